"""The local traffic router: one small process on a stage's stable port that forwards
each request to one of the stage's live versions (stdlib only, plus the control thread
of ``slml.runtime.control``).

    python -m slml.providers.local_router --record PATH --host H --port N
        --capture-dir DIR [--control-fd N]

- Routes come from the deployment record (``traffic``: version, percent, role; each
  version's server is reached on ``versions[N].admin_port``), re-read whenever the
  record file changes: promote, rollback and the guard only rewrite the record.
- A request goes to a version drawn by weight; with the record's ``sticky_header`` set
  and present, the header value's hash picks it, so one client stays on one version.
- A shadow version gets a copy of each answered request *after* the client has its
  answer (never delaying it); the shadow's answer is appended to
  ``DIR/shadow-v<N>.jsonl`` and never returned.
- Per version it counts requests, errors by status code (>= 400), and latency over a
  sliding window, served as JSON on its admin port: ``GET /metrics?window=SECONDS``.
- Once started it prints ``{"event": "ready", "pid", "port", "admin_port"}``. Its life
  follows the record as a server's does (``slml.runtime.control``): it keeps running
  only while the record's ``pids`` name it, once its deployer is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from slml.runtime.control import Control

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
WINDOW_KEEP_S = 600.0  # the longest window the metrics endpoint answers for
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade",
        "content-length"}  # fmt: skip


@dataclass(frozen=True)
class Route:
    version: int
    percent: float
    role: str
    port: int


@dataclass
class Counters:
    """One version's counters; ``recent`` holds (time, latency ms, status)."""

    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    recent: deque[tuple[float, float, int]] = field(default_factory=deque)

    def add(self, now: float, latency_ms: float, status: int) -> None:
        self.requests += 1
        if status >= 400:
            self.errors[status] = self.errors.get(status, 0) + 1
        self.recent.append((now, latency_ms, status))
        while self.recent and self.recent[0][0] < now - WINDOW_KEEP_S:
            self.recent.popleft()

    def summary(self, now: float, window: float) -> dict[str, Any]:
        seen = [(lat, st) for t, lat, st in self.recent if t >= now - window]
        latencies = sorted(lat for lat, _ in seen)
        failed = sum(1 for _, st in seen if st >= 500)
        return {
            "requests": self.requests,
            "errors": {str(k): v for k, v in sorted(self.errors.items())},
            "window": {"seconds": window, "requests": len(seen), "errors_5xx": failed,
                       "error_rate": failed / len(seen) if seen else 0.0,
                       "p50_ms": _quantile(latencies, 0.50), "p99_ms": _quantile(latencies, 0.99)},
        }  # fmt: skip


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def read_routes(record: Path) -> tuple[list[Route], str | None]:
    """The answering and shadow routes in ``record``, and its sticky header."""
    data = json.loads(record.read_text(encoding="utf-8"))
    versions = data.get("versions") or {}
    routes = []
    for entry in data.get("traffic") or []:
        info = versions.get(str(entry.get("version"))) or {}
        port = info.get("admin_port")
        if isinstance(port, int):
            routes.append(Route(int(entry["version"]), float(entry.get("percent", 0)),
                                str(entry.get("role", "primary")), port))  # fmt: skip
    return routes, data.get("sticky_header")


def choose(routes: list[Route], key: str | None, rng: random.Random) -> Route | None:
    """The answering route for one request: by ``key``'s hash when given, else by weight."""
    answering = [r for r in routes if r.role != "shadow" and r.percent > 0]
    total = sum(r.percent for r in answering)
    if not answering or total <= 0:
        return None
    if key is not None:
        digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
        point = (digest % 1_000_000) / 1_000_000 * total
    else:
        point = rng.uniform(0, total)
    for route in answering:
        point -= route.percent
        if point < 0:
            return route
    return answering[-1]


class Router:
    def __init__(self, *, record: Path, host: str, capture_dir: Path) -> None:
        self.record = record
        self.host = host
        self.capture_dir = capture_dir
        self.routes: list[Route] = []
        self.sticky: str | None = None
        self.counters: dict[int, Counters] = {}
        self.shadow_tasks: set[asyncio.Task[None]] = set()
        self._mtime: float | None = None
        self._rng = random.Random()

    # -- routes --------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the record when it changed (a record it cannot read keeps the routes)."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            mtime = self.record.stat().st_mtime_ns
            if mtime != self._mtime:
                self.routes, self.sticky = read_routes(self.record)
                self._mtime = mtime

    async def watch(self) -> None:
        while True:
            self.reload()
            await asyncio.sleep(0.1)

    # -- the stable port -----------------------------------------------------------------
    async def serve_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:  # fmt: skip
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                keep = await self._answer(request, writer)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):  # fmt: skip
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        key = request.header(self.sticky) if self.sticky else None
        route = choose(self.routes, key, self._rng)
        started = time.monotonic()
        if route is None:
            status, headers, body = _error(503, "no_live_version", "no version serves this stage")
        else:
            status, headers, body = await forward(route.port, request)
            self._count(route.version, started, status)
        keep = request.keep_alive
        writer.write(_response(status, headers, body, keep=keep))
        await writer.drain()
        for shadow in (r for r in self.routes if r.role == "shadow"):
            task = asyncio.create_task(self._shadow(shadow, request))
            self.shadow_tasks.add(task)
            task.add_done_callback(self.shadow_tasks.discard)
        return keep

    def _count(self, version: int, started: float, status: int) -> None:
        now = time.monotonic()
        self.counters.setdefault(version, Counters()).add(now, (now - started) * 1000, status)

    async def _shadow(self, route: Route, request: Request) -> None:
        started = time.monotonic()
        status, _headers, body = await forward(route.port, request)
        self._count(route.version, started, status)
        line = {"at": time.time(), "version": route.version, "method": request.method,
                "path": request.target, "status": status,
                "latency_ms": round((time.monotonic() - started) * 1000, 3),
                "request": _as_json(request.body), "response": _as_json(body)}  # fmt: skip
        self.capture_dir.mkdir(parents=True, exist_ok=True)
        with open(self.capture_dir / f"shadow-v{route.version}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line, default=str) + "\n")

    # -- the admin port ------------------------------------------------------------------
    async def serve_admin(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:  # fmt: skip
        try:
            request = await _read_request(reader)
            if request is None:
                return
            url = urlsplit(request.target)
            if url.path == "/healthz":
                payload: dict[str, Any] = {"status": "ok"}
            elif url.path == "/metrics":
                payload = self.metrics(float(parse_qs(url.query).get("window", ["60"])[0]))
            else:
                status, headers, body = _error(404, "not_found", "GET /metrics or /healthz")
                writer.write(_response(status, headers, body, keep=False))
                return
            body = json.dumps(payload).encode()
            writer.write(_response(200, [("content-type", "application/json")], body, keep=False))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()

    def metrics(self, window: float) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "pid": os.getpid(),
            "traffic": [{"version": r.version, "percent": r.percent, "role": r.role}
                        for r in self.routes],
            "versions": {str(v): c.summary(now, window) for v, c in sorted(self.counters.items())},
        }  # fmt: skip


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None
    if len(head) > MAX_HEAD:
        raise ValueError("head too large")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:] if h)]
    request = Request(method, target, version, headers, b"")
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        request.body = await _read_chunked(reader)
    else:
        length = int(request.header("content-length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        request.body = await reader.readexactly(length) if length else b""
    return request


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(body) > MAX_BODY:
            raise ValueError("body too large")


async def forward(port: int, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send ``request`` to the server on 127.0.0.1:``port``; its status, headers, body.
    An unreachable or broken server is a 502 answer."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return _error(502, "version_unreachable", f"the version's server is unreachable: {exc}")
    try:
        head = [f"{request.method} {request.target} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in request.headers if k.lower() not in _HOP]
        head += [f"content-length: {len(request.body)}", "connection: close", "", ""]
        writer.write("\r\n".join(head).encode("latin-1") + request.body)
        await writer.drain()
        raw = await reader.read()
    except OSError as exc:
        return _error(502, "version_failed", f"the version's server failed: {exc}")
    finally:
        with contextlib.suppress(OSError):
            writer.close()
    return _parse_response(raw)


def _parse_response(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return _error(502, "version_failed", "the version's server sent no complete answer")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:] if h)]
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
        body = _dechunk(body)
    return status, [(k, v) for k, v in headers if k.lower() not in _HOP], body


def _dechunk(data: bytes) -> bytes:
    out, rest = bytearray(), data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return bytes(out)


def _error(status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, [("content-type", "application/json")], body


_REASONS = {200: "OK", 404: "Not Found", 502: "Bad Gateway", 503: "Service Unavailable"}


def _response(status: int, headers: list[tuple[str, str]], body: bytes, *, keep: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"content-length: {len(body)}", f"connection: {'keep-alive' if keep else 'close'}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _as_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


def _listen(host: str, port: int, *, reuse: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def run(args: argparse.Namespace) -> None:
    router = Router(record=args.record, host=args.host, capture_dir=args.capture_dir)
    router.reload()
    stable = _listen(args.host, args.port, reuse=True)
    admin = _listen("127.0.0.1", 0, reuse=False)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    servers = [await asyncio.start_server(router.serve_client, sock=stable, limit=MAX_HEAD),
               await asyncio.start_server(router.serve_admin, sock=admin)]  # fmt: skip
    watcher = asyncio.create_task(router.watch())

    def stop(_why: str) -> None:
        loop.call_soon_threadsafe(done.set)

    Control(fd=args.control_fd, record=args.record, promote=lambda: args.port,
            stop=stop).start()  # fmt: skip
    print(json.dumps({"event": "ready", "pid": os.getpid(), "port": stable.getsockname()[1],
                      "admin_port": admin.getsockname()[1]}), flush=True)  # fmt: skip
    await done.wait()
    for server in servers:
        server.close()
    watcher.cancel()
    if router.shadow_tasks:  # let shadow calls in flight write their answers
        await asyncio.wait(router.shadow_tasks, timeout=5.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slml.providers.local_router",
                                     description="Route a local stage's traffic.")
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--capture-dir", type=Path, required=True)
    parser.add_argument("--control-fd", type=int, default=None)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
