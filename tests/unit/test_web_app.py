"""The annotator's web stack tried as an attacker or a careless client would: a real uvicorn
server on loopback, raw sockets for what `urllib` will not send."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time

import pytest
from test_web_store import (  # same folder: on sys.path
    TOPICS,
    Serving,
    call,
    text_task,
)

from alrun.web import app as web_app
from alrun.web.app import host_names, host_of, serve
from alrun.web.server import Annotator, Auth
from alrun.web.store import DB_FILE, Store


@pytest.fixture
def article(bbc_rows) -> str:
    return bbc_rows[0]["text"]


@pytest.fixture
def served(tmp_path, article):
    """A serving annotator (one article in the batch) and its port; shut down after."""
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = Annotator(store, "multiclass", TOPICS, {}, lease_seconds=60)
    serving = Serving(ann, 0, [text_task(0, 0, article)])
    before = set(threading.enumerate())
    server = serve(ann, "127.0.0.1", 0, Auth(None, None), ["annotate.example"])
    yield server, serving, store, article
    server.shutdown()
    server.server_close()
    store.close()
    assert not server.thread.is_alive(), "the server's thread outlived its shutdown"
    left = [
        t for t in set(threading.enumerate()) - before if t.is_alive() and t is not serving.thread
    ]
    assert left == [], f"threads left behind: {left}"


def raw(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send bytes as they are, return what comes back until the server closes or `wait`."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except TimeoutError:
            pass
        except ConnectionResetError:  # closed with our bytes unread: the reply may be lost
            pass
    return got


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def test_host_names_and_the_host_of_a_header():
    assert host_of("evil.example:8080") == "evil.example"
    assert host_of("[::1]:8080") == "::1" and host_of("LOCALHOST") == "localhost"
    assert host_of("::1") == "::1"
    names = host_names("127.0.0.1", ["Annotate.Example"])
    assert {"localhost", "127.0.0.1", "::1", "annotate.example"} <= names
    assert "evil.example" not in names
    assert socket.gethostname().lower() in host_names("0.0.0.0")


def test_an_unknown_host_header_gets_403_and_no_data(served):
    server, _, _, text = served
    port = server.server_address[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.2:{port}"):
        req = f"GET /api/next?session=a HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        reply = raw(port, req.encode())
        assert status_of(reply) == 403, reply[:200]
        assert b"allowed_hosts" in reply and text[:40].encode() not in reply
    req = b"GET /api/next?session=a HTTP/1.1\r\nConnection: close\r\n\r\n"  # no Host at all
    reply = raw(port, req)
    assert status_of(reply) in (400, 403) and text[:40].encode() not in reply
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "annotate.example"):
        req = f"GET /api/next?session=a HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        reply = raw(port, req.encode())
        assert status_of(reply) == 200 and json.dumps(text)[1:40].encode() in reply


def test_bad_lengths_big_and_slow_bodies_get_4xx_and_the_server_goes_on(
    served, monkeypatch, caplog
):
    server, _, store, _ = served
    port = server.server_address[1]
    base = f"http://127.0.0.1:{port}"
    head = (
        "POST /api/answer?session=a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n"
    )
    caplog.set_level(logging.DEBUG)
    t0 = time.monotonic()
    assert status_of(raw(port, (head + "Content-Length: -1\r\n\r\n").encode())) == 400
    assert time.monotonic() - t0 < 4, "a negative Content-Length must not hang"
    big = web_app.MAX_BODY + 1
    assert status_of(raw(port, (head + f"Content-Length: {big}\r\n\r\n").encode())) == 413
    chunked = head + "Transfer-Encoding: chunked\r\n\r\n"  # no length given: counted as read
    chunk = b"x" * 65536
    body = (f"{len(chunk):x}\r\n").encode() + chunk + b"\r\n"
    reply = raw(port, chunked.encode() + body * (web_app.MAX_BODY // len(chunk) + 1))
    # 413, or the connection closed before it could be read (a reset: the rest of our body
    # was still unread); never an accepted answer
    assert status_of(reply) in (413, 0), reply[:100]
    monkeypatch.setattr(web_app, "BODY_SECONDS", 1.0)
    t0 = time.monotonic()
    reply = raw(port, (head + 'Content-Length: 100\r\n\r\n{"id": ').encode(), wait=10)
    assert status_of(reply) == 408 and time.monotonic() - t0 < 5
    # a client that sends half its headers and goes quiet holds no thread: others are served
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert call(f"{base}/api/status?session=a")[0] == 200
        # one that asks and drops the connection at once (RST), and one that closes mid-body
        for data in (
            b"GET /api/next?session=b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            (head + 'Content-Length: 50\r\n\r\n{"id"').encode(),
        ):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(data)
            s.close()
        time.sleep(0.5)
        assert call(f"{base}/api/status?session=a")[0] == 200
    assert store.active() == []  # none of them stored anything
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_shutdown_is_prompt_with_a_client_still_connected(tmp_path):
    store = Store(f"sqlite:///{tmp_path / DB_FILE}")
    ann = Annotator(store, "multiclass", TOPICS, {}, lease_seconds=60)
    server = serve(ann, "127.0.0.1", 0, Auth(None, None))
    port = server.server_address[1]
    try:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        t0 = time.monotonic()
        server.shutdown()
        assert not server.thread.is_alive() and time.monotonic() - t0 < 8
        slow.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        server.server_close()
        store.close()
