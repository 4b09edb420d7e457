"""``treeflow users``: add, list, disable, enable, rotate, passwd, unlock and remove the users
of the HTTP API.

There is no default user and no default password: the first administrator is made with
``treeflow users add NAME --role admin``. ``add-key NAME`` makes an access key for a
service account (an id and a secret it sends as HTTP Basic), ``keys`` lists them, ``remove-key
ID`` revokes one. The password is read from standard input when that
is not a terminal (``printf '%s' "$PASSWORD" | treeflow users add ...``; one final line break
is dropped), and prompted for twice, hidden, when it is; ``passwd`` reads the new one the same
way. ``rotate`` gives the user a new security stamp, which revokes every token issued to it
(``passwd`` does too); ``disable`` refuses its sign-ins until ``enable`` and revokes its tokens
for good. ``unlock`` forgets a user's failed sign-ins, which lifts a lock-out on every running
server at once (the counts are in the database). Names are matched ignoring case.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.table import Table
from rich.text import Text

from engine.cli.output import json_option, print_json, user_json
from engine.cli.support import console, database_option, open_engine

if TYPE_CHECKING:
    from engine.auth import Accounts, User
    from engine.auth.access_keys import AccessKeys

ROLE_CHOICE = click.Choice(["admin", "user"])


@contextmanager
def open_accounts(database: str) -> Iterator[Accounts]:
    """The accounts of ``database``; tells how to install argon2-cffi if it is missing."""
    try:
        from engine.auth import Accounts
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"{exc}: users need the server extra: pip install 'treeflow[server]'"
        ) from exc
    with open_engine(database, None) as engine:
        yield Accounts(engine)


def read_password() -> str:
    if sys.stdin is not None and not sys.stdin.isatty():
        text = sys.stdin.read()
        return text.removesuffix("\n").removesuffix("\r")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def _said(verb: str, user: User) -> None:
    console.print(f"{verb} user {user.name!r} (role {user.role}, id {user.id})", highlight=False)


@click.group()
def users() -> None:
    """Manage who may call the HTTP API (treeflow serve)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, default="user", show_default=True)
@database_option
def users_add(name: str, role: str, database: str) -> None:
    """Add user NAME; the password comes from standard input (or a prompt on a terminal)."""
    password = read_password()
    with open_accounts(database) as accounts:
        _said("Added", accounts.add_user(name, password, role=role))


@users.command("list")
@json_option
@database_option
def users_list(as_json: bool, database: str) -> None:
    """List the users: name, role, whether disabled, id, when added."""
    with open_accounts(database) as accounts:
        found = accounts.list_users()
    if as_json:
        print_json([user_json(user) for user in found])
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("Name", "Role", "Status", "Id", "Added (UTC)"):
        table.add_column(column, no_wrap=column == "Id")
    for user in found:
        status = Text("disabled", style="red") if user.disabled else Text("enabled", "green")
        table.add_row(Text(user.name), user.role, status, user.id, _when(user.created_at))
    console.print(table)


@users.command("disable")
@click.argument("name")
@database_option
def users_disable(name: str, database: str) -> None:
    """Disable user NAME: its sign-ins and its tokens are refused until it is enabled."""
    with open_accounts(database) as accounts:
        _said("Disabled", accounts.set_disabled(name, True))


@users.command("enable")
@click.argument("name")
@database_option
def users_enable(name: str, database: str) -> None:
    """Enable user NAME again; it signs in anew (disabling revoked its tokens)."""
    with open_accounts(database) as accounts:
        _said("Enabled", accounts.set_disabled(name, False))


@users.command("rotate")
@click.argument("name")
@database_option
def users_rotate(name: str, database: str) -> None:
    """Rotate NAME's security stamp: every token issued to it so far stops working."""
    with open_accounts(database) as accounts:
        _said("Rotated the security stamp of", accounts.rotate(name))


@users.command("passwd")
@click.argument("name")
@database_option
def users_passwd(name: str, database: str) -> None:
    """Set NAME's password (from standard input, or a prompt); its tokens stop working."""
    password = read_password()
    with open_accounts(database) as accounts:
        _said("Changed the password of", accounts.set_password(name, password))


@users.command("unlock")
@click.argument("name")
@click.option("--address", help="Also forget the failed sign-ins from this client address (IP).")
@database_option
def users_unlock(name: str, address: str | None, database: str) -> None:
    """Forget NAME's failed sign-ins: a lock-out ends at once, on every running server."""
    with open_accounts(database) as accounts:
        user, forgotten = accounts.unlock(name, address=address)
    what = f"{forgotten} failed sign-in{'' if forgotten == 1 else 's'}"
    where = f" (and address {address})" if address else ""
    console.print(f"Unlocked user {user.name!r}{where}: forgot {what}", highlight=False)


@users.command("remove")
@click.argument("name")
@database_option
def users_remove(name: str, database: str) -> None:
    """Remove NAME, its tokens and its failed sign-ins (runs it created keep its id)."""
    with open_accounts(database) as accounts:
        _said("Removed", accounts.remove_user(name))


@contextmanager
def open_keys(database: str) -> Iterator[AccessKeys]:
    with open_accounts(database) as accounts:
        from engine.auth.access_keys import AccessKeys

        yield AccessKeys(accounts.engine)


@users.command("add-key")
@click.argument("name")
@click.option("--description", default="", help="What the key is for (shown by keys).")
@database_option
def users_add_key(name: str, description: str, database: str) -> None:
    """Make an access key for NAME: an id and a secret, sent as HTTP Basic user and password.

    The secret is printed once and never again; the key acts as NAME, with its role, until
    remove-key (or while NAME is disabled, not at all).
    """
    with open_keys(database) as keys:
        made = keys.add(name, description=description)
    console.print(
        f"Added access key {made.key.id} for user {made.key.user_name!r}", highlight=False
    )
    click.echo(f"id: {made.key.id}")
    click.echo(f"secret: {made.secret}")
    console.print("The secret is not shown again: store it now.", highlight=False)


@users.command("keys")
@click.argument("name", required=False)
@database_option
def users_keys(name: str | None, database: str) -> None:
    """List the access keys (of NAME, when given): id, user, description, when made."""
    with open_keys(database) as keys:
        found = keys.list(name)
    table = Table(show_header=True, header_style="bold")
    for column in ("Id", "User", "Description", "Added (UTC)"):
        table.add_column(column, no_wrap=column == "Id")
    for key in found:
        table.add_row(key.id, Text(key.user_name), Text(key.description), _when(key.created_at))
    console.print(table)


@users.command("remove-key")
@click.argument("key_id", metavar="ID")
@database_option
def users_remove_key(key_id: str, database: str) -> None:
    """Revoke the access key ID: calls that send it are refused from now on."""
    with open_keys(database) as keys:
        key = keys.remove(key_id)
    console.print(f"Removed access key {key.id} of user {key.user_name!r}", highlight=False)


__all__ = ["users"]
