"""The console on a large database: the time to render its pages and what each page weighs.

    python -m benchmarks.console [--stored 100000] [--database URL] [--repeat 20]

A fresh database (a scratch SQLite file unless ``--database`` names one) gets ``--stored``
completed linear10 runs with their tasks and triggers, inserted in chunks as the scaling
workload inserts them (:func:`benchmarks.scaling.prefill`, untimed); one run in ten is
recorded as created by the plain user ``ada``. A real uvicorn on loopback serves the app
(no engine workers: nothing else runs), an administrator and ``ada`` sign in through the
console's form, and each page is fetched ``--repeat`` times after one warm-up; the figures
are the median and the slowest time to the last byte, and the page's HTML bytes (raw and
gzip-compressed, as a proxy would send it). The assets every page loads (stylesheet, script,
htmx) are weighed once: a browser caches them (their addresses carry the version).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

from benchmarks.measure import LINEAR10, open_engine
from benchmarks.scaling import CHUNK, prefill
from engine.auth import Accounts
from engine.server import ServerSettings, create_app
from engine.store.tables import run_creators

PASSWORD = "a benchmark password"  # noqa: S105 - a scratch database's user
PAGES = (
    ("Runs", "/console/runs"),
    ("Runs, live refresh (htmx)", "/console/runs"),
    ("Runs by status, page 1,000", "/console/runs?status=Completed&offset=49950"),
    ("Runs by source id", "/console/runs?source_id=stored-77"),
    ("Runs of one creator", "/console/runs?creator=ada"),
    ("Run", "/console/runs/{run}"),
    ("Errors", "/console/errors"),
    ("Deferred", "/console/deferred"),
    ("Trees", "/console/trees"),
    ("Tree version (picture)", "/console/trees/versions/1"),
    ("Schedules", "/console/schedules"),
    ("Instances", "/console/instances"),
    ("Health", "/console/health"),
)
PLAIN_PAGES = (("Runs (plain user: own runs)", "/console/runs"),)
ASSETS = ("console.css", "console.js", "htmx.min.js")


def _creators(url: str, stored: int, user_id: str) -> None:
    with open_engine(url, LINEAR10) as engine, engine.database.write() as connection:
        for start in range(1, stored + 1, CHUNK * 10):
            rows = [
                {"run_id": run_id, "user_id": user_id}
                for run_id in range(start, min(start + CHUNK * 10, stored + 1), 10)
            ]
            connection.execute(run_creators.insert(), rows)


def _signed_in(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    form = client.get("/console/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if token is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    answer = client.post(
        "/console/sign-in",
        data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    if answer.status_code != 303:
        raise RuntimeError(f"signing in as {name} answered {answer.status_code}")
    return client


def _timed(client: httpx.Client, path: str, repeat: int, headers: dict[str, str]) -> dict[str, Any]:
    client.get(path, headers=headers)  # warm-up: caches, the planner's statistics
    times, body = [], b""
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        body = response.content
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    return {
        "path": path,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "html_bytes": len(body),
        "html_gzip_bytes": len(gzip.compress(body)),
    }


def measure(url: str, stored: int, repeat: int) -> dict[str, Any]:
    prefill(url, stored, lambda _done: None)
    with open_engine(url, LINEAR10) as engine:
        accounts = Accounts(engine)
        accounts.add_user("root", PASSWORD, role="admin")
        ada = accounts.add_user("ada", PASSWORD, role="user")
        _creators(url, stored, ada.id)
        app = create_app(engine, ServerSettings(workers=0))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        try:
            pages: dict[str, Any] = {}
            root, plain = _signed_in(base, "root"), _signed_in(base, "ada")
            try:
                for label, path in PAGES:
                    headers = {"HX-Request": "true"} if "htmx" in label else {}
                    pages[label] = _timed(root, path.format(run=stored // 2), repeat, headers)
                for label, path in PLAIN_PAGES:
                    pages[label] = _timed(plain, path, repeat, {})
                assets = {}
                for name in ASSETS:
                    content = root.get(f"/console/static/{name}").content
                    assets[name] = {
                        "bytes": len(content),
                        "gzip_bytes": len(gzip.compress(content)),
                    }
            finally:
                root.close()
                plain.close()
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()
        with engine.database.read() as connection:
            counted = connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
    return {"stored_runs": counted, "database": url.split(":")[0], "pages": pages, "assets": assets}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database", help="an empty database (default: a scratch SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database or f"sqlite:///{Path(scratch) / 'console.db'}"
        figures = measure(url, args.stored, args.repeat)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
