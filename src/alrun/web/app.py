"""The annotator's web app: Starlette on uvicorn, over one `Annotator`.

A maintained ASGI stack instead of `http.server` (which Python's documentation does not
recommend for production; Prodigy serves FastAPI, which is Starlette, on uvicorn): h11 parses
requests and refuses malformed ones (a negative Content-Length) with 400 before the app sees
them, clients that go away mid-answer cost a closed connection and no thread, and the server
shuts down gracefully at the end of a run. On top of it, what the annotator needs:

- a Host allow-list: a request whose `Host` is not one of the annotator's names gets 403 and no
  data (DNS rebinding: a web page the person visits can point its own name at 127.0.0.1);
  loopback names by default, the bound host, and `oracle.allowed_hosts` for more;
- bodies of at most `MAX_BODY` bytes, read within `BODY_SECONDS` (413 / 408);
- the token, JSON-only actions and session names, checked as before (`Auth`, `SESSION_RE`);
- the same security headers on every page and answer.

Annotator calls take a lock, so they run in the thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from alrun.errors import AlrunError
from alrun.web.server import CSP, SESSION_RE, STATIC, Annotator, Auth, HttpError

log = logging.getLogger("alrun.web")
MAX_BODY = 1 << 20  # an answer is a few KB; a long NER document's spans stay far below this
BODY_SECONDS = 20.0  # a client that sends its body slower than this gets 408
LOOPBACK = ("localhost", "127.0.0.1", "::1")
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def _headers(status: int, ctype: str, cookie: str | None) -> dict[str, str]:
    """The headers every page and answer carries."""
    out = {
        "Content-Type": ctype,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CSP,
        "Referrer-Policy": "no-referrer",
    }
    if cookie:
        out["Set-Cookie"] = f"alrun_token={cookie}; HttpOnly; SameSite=Strict; Path=/"
    if status == 401:
        out["WWW-Authenticate"] = 'Basic realm="alrun annotator"'
    if status in (408, 413):  # the body was not read to its end: this connection is done
        out["Connection"] = "close"
    return out


def _json(status: int, obj: Any, cookie: str | None = None) -> Response:
    body = json.dumps(obj).encode()
    return Response(body, status, _headers(status, "application/json", cookie))


def host_names(host: str, extra: Iterable[str] = ()) -> set[str]:
    """The Host names the annotator answers to: loopback names, the host it is bound to
    (bound to every interface: this machine's name and addresses), and `extra`."""
    names = {*LOOPBACK, *(h.lower() for h in extra)}
    if host in ("0.0.0.0", "::", ""):
        for name in (socket.gethostname(), socket.getfqdn()):
            names.add(name.lower())
            with contextlib.suppress(OSError):
                names |= {str(a[4][0]) for a in socket.getaddrinfo(name, None)}
    else:
        names.add(host.lower())
    return names


def host_of(header: str) -> str:
    """`name:port`, `[v6]:port`, `name` -> the name, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class AllowedHosts:
    """ASGI middleware: refuse a request whose Host header is not one of `names` (403)."""

    def __init__(self, app: ASGIApp, names: set[str]) -> None:
        self.app, self.names = app, names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_of(given) not in self.names:
                known = ", ".join(sorted(self.names))
                msg = (
                    f"unknown Host {given!r}: the annotator answers to {known}; "
                    "add the name you open it by to oracle.allowed_hosts"
                )
                await _json(403, {"error": msg})(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def read_body(request: Request) -> bytes:
    """The request body, at most `MAX_BODY` bytes (413), all of it within `BODY_SECONDS`
    (408): a client that trickles its body holds no thread, and not for long."""
    limit, seconds = MAX_BODY, BODY_SECONDS
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"body over {limit} bytes")

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"body over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), seconds)
    except TimeoutError as e:
        raise HttpError(408, f"the body did not arrive within {seconds:g} s") from e


def build_app(annotator: Annotator, auth: Auth, names: set[str]) -> ASGIApp:
    """The annotator's routes behind the Host allow-list: same URLs as ever."""

    def guarded(handler: Callable[..., Any]) -> Callable[[Request], Any]:
        """Token and session checks, then the handler; errors as JSON answers."""

        async def endpoint(request: Request) -> Response:
            query = parse_qs(request.url.query)
            ok, set_cookie = auth.check(request.headers, query)
            if not ok:
                return _json(401, {"error": "a valid token is needed (oracle.token)"})
            cookie = auth.token if set_cookie else None
            session = query.get("session", ["default"])[0]
            try:
                if not SESSION_RE.match(session):
                    raise HttpError(400, "session names are 1-64 letters, digits or _.@-")
                return await handler(request, session, cookie)
            except HttpError as e:
                return _json(e.status, {"error": str(e)})
            except ClientDisconnect:  # gone mid-body: nothing stored, nobody to answer
                log.debug("client left during %s %s", request.method, request.url.path)
                return _json(400, {"error": "the client disconnected"})
            except Exception as e:  # a bug must not kill the server; the person keeps going
                log.exception("annotator request %s %s failed", request.method, request.url.path)
                return _json(500, {"error": f"server error: {e.__class__.__name__}"})

        return endpoint

    async def page(request: Request, session: str, cookie: str | None) -> Response:
        name = request.path_params.get("name", "index.html")
        path = STATIC / name
        if "/" in name or path.suffix not in TYPES or not path.is_file():
            raise HttpError(404, f"no file {name}")
        ctype = TYPES[path.suffix] + "; charset=utf-8"
        return Response(path.read_bytes(), 200, _headers(200, ctype, cookie))

    def reader(call: Callable[[str], dict[str, Any]]) -> Callable[..., Any]:
        async def get(request: Request, session: str, cookie: str | None) -> Response:
            return _json(200, await run_in_threadpool(call, session))

        return get

    def action(call: Callable[[str, Any], dict[str, Any]]) -> Callable[..., Any]:
        async def post(request: Request, session: str, cookie: str | None) -> Response:
            # JSON only: a cross-site form cannot send it without a CORS preflight we refuse
            ctype = request.headers.get("content-type", "").split(";")[0].strip()
            if ctype != "application/json":
                raise HttpError(415, "send the body as Content-Type: application/json")
            raw = await read_body(request)
            try:
                body = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise HttpError(400, f"body is not JSON: {e}") from e
            return _json(200, await run_in_threadpool(call, session, body))

        return post

    async def missing(request: Request, session: str, cookie: str | None) -> Response:
        raise HttpError(404, f"no page {request.url.path}")

    routes = [
        Route("/", guarded(page)),
        Route("/index.html", guarded(page)),
        Route("/static/{name:path}", guarded(page)),
        Route("/api/status", guarded(reader(annotator.status))),
        Route("/api/next", guarded(reader(annotator.next))),
        Route("/api/answer", guarded(action(annotator.answer)), methods=["POST"]),
        Route("/api/undo", guarded(action(lambda s, _b: annotator.undo(s))), methods=["POST"]),
        Route(
            "/api/heartbeat",
            guarded(action(lambda s, _b: annotator.heartbeat(s))),
            methods=["POST"],
        ),
        Route(
            "/api/release", guarded(action(lambda s, _b: annotator.release(s))), methods=["POST"]
        ),
        Route("/{rest:path}", guarded(missing), methods=["GET", "POST", "PUT", "DELETE"]),
    ]
    return AllowedHosts(Starlette(routes=routes), names)


class Server:
    """uvicorn serving the app from a thread of its own, on a socket bound here (so a busy
    port is an error before anything is served, and port 0's pick is known at once)."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        import uvicorn

        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
        except OSError as e:
            raise AlrunError(
                f"the annotator cannot listen on {host}:{port} ({e.strerror}); "
                "set oracle.port to a free port (oracle.port=0 picks one)"
            ) from e
        self.server_address = self.sock.getsockname()
        config = uvicorn.Config(
            app,
            log_level="warning",  # malformed requests are one warning line, never a traceback
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
            h11_max_incomplete_event_size=64 * 1024,  # request line and headers
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            name="alrun-annotator",
            daemon=True,
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            raise AlrunError(f"the annotator did not start on {host}:{port}")

    def shutdown(self) -> None:
        """Finish open requests (up to 5 s), close every connection, stop the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def server_close(self) -> None:
        """The listening socket (closed by uvicorn already after a shutdown)."""
        self.sock.close()


def serve(
    annotator: Annotator, host: str, port: int, auth: Auth, allowed_hosts: Iterable[str] = ()
) -> Server:
    """Start serving in a daemon thread; the caller shuts it down."""
    return Server(build_app(annotator, auth, host_names(host, allowed_hosts)), host, port)
