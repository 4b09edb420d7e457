"""The v2 trees and routines: search, read by title, export and import Kinetic XML, update,
delete, and ``GET /trees/missing``.

A tree is named by its title, ``Source :: Group :: Name`` (a global routine's source and group
are ``-``); the SDK sends it URL-encoded. A title holding ``/`` (sent as ``%2F``) is not
found: the path is decoded before it is routed, so its parts no longer make one segment.

- ``GET /trees`` filters by ``source``, ``group``, ``name``, ``nameFragment``,
  ``groupFragment``, ``type`` and ``status``, sorted by title; ``include=export`` adds each
  tree's Kinetic XML, ``treeJson`` its definition.
- ``POST /trees`` imports a Kinetic XML export, as a multipart ``content`` file (what the SDK's
  ``import_tree`` sends) or as the raw body; ``force=true`` replaces a tree that exists (a new
  version: runs keep the version they started on), without it an existing title is refused
  (409). The conversion is ``treeflow kinetic import``'s, and what it cannot convert is refused
  with every problem. The tree is registered in this server's catalog and the database.
- ``PUT /trees/{title}`` changes ``status`` (``Active``, ``Inactive``) and ``notes``: a new
  version, like a changed file. ``DELETE`` makes the tree Inactive (no new runs start; the
  versions its runs are pinned to stay, as they must), and answers it as it now is.
- ``GET /trees/missing`` lists the routine ids trees call that no routine provides (Kinetic's
  ``routine_`` ids among the unknown handlers of the refused tree files).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.errors import BadRequest, ItemNotFound, TreeExists
from engine.kinetic.exporter import export_kinetic, exported_definition
from engine.kinetic.importer import MAX_EXPORT_BYTES, convert_kinetic
from engine.server.auth import AnyUser, caller
from engine.server.kinetic_v2.handlers import missing
from engine.server.kinetic_v2.runs import json_object, paged
from engine.server.kinetic_v2.shapes import (
    answer,
    includes,
    message,
    page,
    single,
    tree_shape,
    tree_title,
    tree_type,
)
from engine.server.paging import app_engine
from engine.tree.model import Tree

router = APIRouter()
Admin = Annotated[User, Depends(caller(("admin",)))]
Include = Annotated[str | None, Query(description="comma-separated: details, export, treeJson")]
SEPARATOR = " :: "
TREE_STATUSES = ("Active", "Inactive")


def split_title(title: str) -> tuple[str, str, str]:
    source, first, rest = title.partition(SEPARATOR)
    group, last, name = rest.rpartition(SEPARATOR)
    if not first or not last or not source or not group or not name:
        raise ItemNotFound(kind="tree", name=title)
    return source, group, name


def find_tree(request: Request, title: str) -> Tree:
    source, group, name = split_title(title)
    for tree in app_engine(request).trees:
        key = tree.key
        if (key.source_name, key.source_group, key.name) == (source, group, name):
            return tree
    raise ItemNotFound(kind="tree", name=title)


def kinetic_xml(tree: Tree) -> str:
    return export_kinetic(tree.definition, start=tree.start, routine_type=tree_type(tree))


def shape(request: Request, tree: Tree, include: frozenset[str]) -> dict[str, Any]:
    body = tree_shape(tree, app_engine(request).tree_version(tree.key), include)
    if "export" in include:
        body["export"] = kinetic_xml(tree)
    return body


def _matches(tree: Tree, filters: dict[str, str | None]) -> bool:
    key = tree.key
    checks = (
        (filters["source"], key.source_name, False),
        (filters["group"], key.source_group, False),
        (filters["name"], key.name, False),
        (filters["groupFragment"], key.source_group, True),
        (filters["nameFragment"], key.name, True),
        (filters["type"], tree_type(tree), False),
        (filters["status"], tree.status, False),
    )
    for wanted, value, fragment in checks:
        if wanted is None:
            continue
        if (wanted.casefold() not in value.casefold()) if fragment else wanted != value:
            return False
    return True


@router.get("/trees", summary="searchTrees")
async def search_trees(
    request: Request,
    _user: AnyUser,
    include: Include = None,
    limit: int = 100,
    offset: int = 0,
) -> Response:
    limit, offset = paged(limit, offset)
    names = ("source", "group", "name", "groupFragment", "nameFragment", "type", "status")
    filters = {name: request.query_params.get(name) for name in names}
    wanted = includes(include)
    found = sorted(
        (tree for tree in app_engine(request).trees if _matches(tree, filters)),
        key=lambda tree: tree_title(tree.key),
    )
    items = [shape(request, tree, wanted) for tree in found[offset : offset + limit]]
    return page("trees", items, total=len(found), limit=limit, offset=offset)


@router.get("/trees/missing", summary="listMissingTrees")
async def list_missing_trees(request: Request, _user: AnyUser) -> Response:
    found = missing(app_engine(request).tree_problems, routines=True)
    return answer({"missingRoutines": found})


@router.get("/trees/{title}", summary="retrieveTree")
async def retrieve_tree(
    request: Request, _user: AnyUser, title: str, include: Include = None
) -> Response:
    tree = find_tree(request, title)
    return single("tree", shape(request, tree, includes(include)))


@router.get("/trees/{title}/export", summary="exportTree")
async def export_tree(request: Request, _user: AnyUser, title: str) -> Response:
    return answer({"tree": kinetic_xml(find_tree(request, title))})


async def _export_document(request: Request) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        return await request.body()
    async with request.form(max_files=1, max_fields=10) as form:  # closes the upload's file
        content = form.get("content")
        if content is None:
            raise BadRequest(field="content", reason="the multipart form has no 'content' part")
        if isinstance(content, str):
            return content.encode("utf-8")
        data: bytes = await content.read(MAX_EXPORT_BYTES + 1)
        return data


@router.post("/trees", summary="createTree (import a Kinetic XML export)")
async def create_tree(request: Request, _user: Admin, force: str | None = None) -> Response:
    if force not in (None, "true", "false"):
        raise BadRequest(field="force", reason=f"must be true or false, not {force!r}")
    document = await _export_document(request)
    if not document.strip():
        raise BadRequest(field="content", reason="a Kinetic tree export (XML) is required")
    engine = app_engine(request)

    def load() -> Tree:
        definition = exported_definition(document)  # treeflow's own export, unedited
        if definition is None:
            definition = convert_kinetic(document, file="<upload>").definition
        title = SEPARATOR.join((definition["source"], definition["group"], definition["name"]))
        if force != "true" and any(tree_title(tree.key) == title for tree in engine.trees):
            raise TreeExists(title=title)
        return engine.load_tree(definition)

    tree = await run_in_threadpool(load)
    return message(f"Imported the tree {tree_title(tree.key)!r}.")


def _changed(tree: Tree, body: dict[str, Any]) -> dict[str, Any]:
    allowed = {"status", "notes"}
    unknown = sorted(set(body) - allowed - {"title", "name", "sourceName", "sourceGroup"})
    if unknown:
        raise BadRequest(
            field="body", reason=f"treeflow cannot change {', '.join(map(repr, unknown))}"
        )
    current = (tree.key.name, tree.key.source_name, tree.key.source_group, tree_title(tree.key))
    for name, value in zip(("name", "sourceName", "sourceGroup", "title"), current, strict=True):
        if name in body and body[name] != value:
            raise BadRequest(field=name, reason="renaming a tree is not supported")
    definition = dict(tree.definition)
    if "status" in body:
        if body["status"] not in TREE_STATUSES:
            raise BadRequest(field="status", reason="must be Active or Inactive")
        definition["status"] = body["status"]
    if "notes" in body:
        if not isinstance(body["notes"], str):
            raise BadRequest(field="notes", reason="must be a string")
        definition["description"] = body["notes"]
    return definition


@router.put("/trees/{title}", summary="updateTree")
async def update_tree(request: Request, _user: Admin, title: str) -> Response:
    body = json_object(await request.body())
    engine = app_engine(request)

    def update() -> Tree:
        return engine.load_tree(_changed(find_tree(request, title), body))

    tree = await run_in_threadpool(update)
    return single("tree", shape(request, tree, frozenset()))


@router.delete("/trees/{title}", summary="deleteTree (made Inactive)")
async def delete_tree(request: Request, _user: Admin, title: str) -> Response:
    engine = app_engine(request)

    def deactivate() -> Tree:
        tree = find_tree(request, title)
        return engine.load_tree({**tree.definition, "status": "Inactive"})

    tree = await run_in_threadpool(deactivate)
    return single("tree", shape(request, tree, frozenset()))


__all__ = ["find_tree", "router", "split_title"]
