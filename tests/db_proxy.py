"""A TCP proxy on loopback between an engine and PostgreSQL, for outages a test decides.

The engine connects to the proxy's port; the proxy forwards every byte both ways, until the
test says otherwise:

- :meth:`Proxy.cut` closes every connection and refuses new ones (the database is
  unreachable) until :meth:`Proxy.mend`;
- :meth:`Proxy.lose_next_commit_reply` makes the proxy forward the next ``COMMIT`` of a
  transaction that inserted a run, and then drop the server's answer and both connections: the
  commit happened, and the engine cannot know it (a connection lost in the commit's last
  moment, the case that leaves a client unsure whether its request took effect).

The URL must disable TLS and GSS encryption (:func:`proxied_url` does), so that the stream can
be read: psycopg sends ``COMMIT`` as a simple query, ``Q`` ``COMMIT\\0``.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

import sqlalchemy as sa

COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"
INSERT_RUN = b"INSERT INTO runs"
UPSTREAM = ("127.0.0.1", 5432)


def proxied_url(url: str, port: int, application_name: str) -> str:
    """``url`` through the proxy on ``port``, unencrypted, with an ``application_name``."""
    parsed = sa.make_url(url)
    return (
        parsed.set(host="127.0.0.1", port=port)
        .update_query_dict(
            {"sslmode": "disable", "gssencmode": "disable", "application_name": application_name}
        )
        .render_as_string(hide_password=False)
    )


class _Pair:
    """One proxied connection: the engine's socket and the server's."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.inserted_run = False  # this transaction inserted a run: its COMMIT is the one
        self.lose_reply = False

    def close(self) -> None:
        for sock in (self.client, self.server):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class Proxy:
    def __init__(self, upstream: tuple[str, int] = UPSTREAM) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._refusing = False
        self._losing = False
        self.lost_commits = 0
        self._stopped = False
        threading.Thread(target=self._accept, name="db-proxy", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()

    def mend(self) -> None:
        with self._lock:
            self._refusing = False

    def lose_next_commit_reply(self) -> None:
        with self._lock:
            self._losing = True

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                client.close()
                continue
            pair = _Pair(client, socket.create_connection(self.upstream))
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._to_server, args=(pair,), daemon=True).start()
            threading.Thread(target=self._to_client, args=(pair,), daemon=True).start()

    def _to_server(self, pair: _Pair) -> None:
        tail = b""  # the end of the last chunk, for a pattern split across two reads
        while chunk := self._recv(pair.client):
            seen = tail + chunk
            if INSERT_RUN in seen:
                pair.inserted_run = True
            if pair.inserted_run and COMMIT in seen:
                pair.inserted_run = False
                with self._lock:
                    if self._losing:
                        self._losing = False
                        pair.lose_reply = True  # set before the COMMIT reaches the server
            tail = seen[-len(INSERT_RUN) :]
            if not self._send(pair.server, chunk):
                break
        pair.close()

    def _to_client(self, pair: _Pair) -> None:
        while chunk := self._recv(pair.server):
            if pair.lose_reply:  # the server answered the COMMIT: it is durable, and lost
                with self._lock:
                    self.lost_commits += 1
                break
            if not self._send(pair.client, chunk):
                break
        pair.close()

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        try:
            return sock.recv(65536)
        except OSError:
            return b""

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True
