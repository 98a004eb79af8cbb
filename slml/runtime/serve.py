"""Run the app under uvicorn: ``python -m slml.runtime.serve --model DIR``.

    python -m slml.runtime.serve [serve] [--model DIR] [--host H] [--port N]
        [--admin-port N] [--reuse-port] [--max-body-bytes N] [--log-level L]

- ``--model`` defaults to ``$SLML_MODEL_DIR``, else ``/opt/ml/model`` when it exists
  (SageMaker); after the ``serve`` argument an existing ``/opt/ml/model`` comes first,
  so an image never serves its baked-in model instead of SageMaker's. A lone ``serve``
  argument is accepted (SageMaker runs ``<image> serve``) and then the host defaults to
  0.0.0.0.
- ``--port`` defaults to ``$PORT`` (Cloud Run), else 8080; 0 picks a free port.
  ``--host`` defaults to ``$SLML_HOST``, else 127.0.0.1.
- ``--reuse-port`` binds with SO_REUSEPORT, so a second server can bind the same port
  (blue/green); ``--admin-port`` adds a listener on host:admin_port served by the same
  app, to reach this very process (0 = a free port).
- Once the model is loaded and the sockets listen, one JSON line goes to stdout:
  ``{"event": "ready", "host", "port", "admin_port", "pid", "model", "version"}``.
- Connection timeouts and limits come from ``SLML_IDLE_TIMEOUT``, ``SLML_HEADER_TIMEOUT``,
  ``SLML_BODY_TIMEOUT``, ``SLML_MAX_REQUEST_LINE``, ``SLML_MAX_HEADER_BYTES`` and
  ``SLML_MAX_CONNECTIONS`` (slml/runtime/limits.py; the HTTP layer is
  slml/runtime/protocol.py). A bad value, or ``SLML_API_KEY`` set but empty: one line
  on stderr, exit 2, before the model loads.
- ``--standby``, ``--control-fd N``, ``--record PATH``: how the local provider starts a
  server off the shared port, promotes it onto it, and ties its life to the deployment
  record (see ``slml.runtime.control``). Needs ``--admin-port``.
- ``--workers N`` (default ``$SLML_WORKERS``, else 1; ``auto`` = one per CPU this
  process may use): N processes serve the same listening socket, forked after the model
  loaded (its memory shared copy-on-write); the first prints the ready line and relays
  SIGTERM/SIGINT to the others. A standby server (``--standby``) runs one worker.
- The event loop is uvloop when it is installed (else asyncio's), the HTTP parser
  httptools when it is installed (else h11; ``SLML_HTTP`` forces either); request log
  lines go through a queue to a writer thread that writes them in batches
  (``slml.runtime.log_handlers.LineWriter``), so a slow stderr never stalls the loop.
- SIGTERM/SIGINT: graceful shutdown, exit 0. A model that fails to load: one line on
  stderr, exit 3 (the traceback too with SLML_DEBUG=1). Bad arguments: exit 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slml.runtime.app import App
    from slml.runtime.limits import Limits

EXIT_LOAD_FAILED = 3
SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m slml.runtime.serve", description="Serve an slml model artifact over HTTP."
    )
    parser.add_argument("command", nargs="?", choices=["serve"], help="accepted for SageMaker")
    parser.add_argument("--model", help="artifact directory (default $SLML_MODEL_DIR)")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--admin-port", type=int, default=None)
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--standby", action="store_true",
                        help="listen on the admin port only until promoted (slml.runtime.control)")
    parser.add_argument("--control-fd", type=int, default=None, help="the deployer's pipe")
    parser.add_argument("--record", type=Path, default=None,
                        help="keep serving only while this deployment record names this pid")
    parser.add_argument("--max-body-bytes", type=int, default=None)
    parser.add_argument("--workers", default=None,
                        help="processes serving the port: a number or 'auto' (one per CPU); "
                             "default $SLML_WORKERS, else 1")  # fmt: skip
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's own log level (request logs are always on)",
    )
    args = parser.parse_args(argv)
    sagemaker = _sagemaker_dir()
    if args.command == "serve" and sagemaker:  # SageMaker's model.tar.gz wins
        args.model = args.model or sagemaker
    args.model = args.model or os.environ.get("SLML_MODEL_DIR") or sagemaker
    if not args.model:
        parser.error("no model: pass --model DIR or set SLML_MODEL_DIR")
    default_host = "0.0.0.0" if args.command == "serve" else "127.0.0.1"
    args.host = args.host or os.environ.get("SLML_HOST") or default_host
    if args.port is None:
        args.port = int(os.environ.get("PORT") or 8080)
    try:
        args.workers = worker_count(args.workers or os.environ.get("SLML_WORKERS") or "1")
    except ValueError as exc:
        parser.error(str(exc))
    return args


def worker_count(raw: str) -> int:
    """``auto`` → the CPUs this process may run on; else a whole number from 1 to 64."""
    if raw.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise ValueError(f"workers={raw!r}: expected a whole number from 1 to 64, or 'auto'")
    return value


def _sagemaker_dir() -> str | None:
    return str(SAGEMAKER_MODEL_DIR) if SAGEMAKER_MODEL_DIR.is_dir() else None


def bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening TCP socket (SO_REUSEADDR; SO_REUSEPORT too when asked).

    The protocol must be IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets whose
    ``proto`` says TCP, and with Nagle left on every response waited ~40 ms for the
    client's delayed ACK (22 req/s on one connection instead of ~500)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        limits = _settings()
    except ValueError as exc:
        _fail(f"slml serve: {exc}")
        return 2
    try:
        app = _load_app(args)
    except Exception as exc:  # any load failure is reported in one line
        _fail(f"slml serve: cannot load the model from {args.model}: {exc}")
        return EXIT_LOAD_FAILED
    if args.standby and args.admin_port is None:
        _fail("slml serve: --standby needs --admin-port (the only port it listens on)")
        return 2
    try:
        sockets = [] if args.standby else [bind(args.host, args.port, reuse_port=args.reuse_port)]
        if args.admin_port is not None:
            sockets.append(bind(args.host, args.admin_port, reuse_port=False))
    except OSError as exc:
        _fail(f"slml serve: cannot listen on {args.host}:{args.port}: {exc}")
        return 2
    ready = {
        "event": "ready",
        "host": args.host,
        "port": args.port if args.standby else sockets[0].getsockname()[1],
        "admin_port": sockets[-1].getsockname()[1] if args.admin_port is not None else None,
        "standby": args.standby,
        "pid": os.getpid(),
        "model": app.state.model.name,
        "version": app.state.model.version,
    }
    workers = 1 if args.standby else args.workers
    shared = sockets[:1] if args.admin_port is not None else sockets  # admin: this pid only
    children = _fork_workers(workers - 1, app, shared, args, limits)
    try:
        _run(app, sockets, ready, args, limits=limits)
    finally:
        _stop_workers(children)
    return 0


def _fork_workers(count: int, app: App, sockets: list[socket.socket],
                  args: argparse.Namespace, limits: Limits) -> list[int]:  # fmt: skip
    """Fork ``count`` more servers on the same sockets; each exits 0 on SIGTERM."""
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # a worker: serve until told to stop, never return into main()
            code = 0
            try:
                _run(app, sockets, None, args, limits=limits)
            except BaseException:  # report it, leave with an error code
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    return children


def _stop_workers(children: list[int]) -> None:
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            continue


def _settings() -> Limits:
    """The connection limits and the API key check, refused before the model loads."""
    from slml.runtime.app import api_key_from_env
    from slml.runtime.limits import limits_from_env
    from slml.runtime.protocol import parser_name

    api_key_from_env()
    limits = limits_from_env()
    parser_name(limits.parser)  # SLML_HTTP=httptools without httptools: refused here
    return limits


def _load_app(args: argparse.Namespace) -> App:
    from slml.runtime.app import create_app

    return create_app(args.model, max_body_bytes=args.max_body_bytes)


def _fail(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    if os.environ.get("SLML_DEBUG") == "1":
        traceback.print_exc()


def _run(
    app: App,
    sockets: list[socket.socket],
    ready: dict[str, Any] | None,
    args: argparse.Namespace,
    *,
    limits: Limits,
) -> None:
    import asyncio

    import uvicorn

    from slml.runtime.control import Control
    from slml.runtime.limits import connection_cap
    from slml.runtime.log_handlers import rate_limit_loggers
    from slml.runtime.logs import emit
    from slml.runtime.protocol import protocol_class

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            self.loop = asyncio.get_running_loop()
            if not self.should_exit and ready is not None:  # the first worker only
                emit(ready)
                control.start()

        async def listen(self, sock: socket.socket) -> None:
            """Serve one more listening socket (the shared port, once promoted)."""
            config = self.config

            def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> Any:
                # typed as type[asyncio.Protocol] by uvicorn; it is an H11Protocol class
                return config.http_protocol_class(  # type: ignore[call-arg]
                    config=config, server_state=self.server_state,
                    app_state=self.lifespan.state, _loop=_loop,
                )  # fmt: skip

            loop = asyncio.get_running_loop()
            self.servers.append(
                await loop.create_server(create_protocol, sock=sock, backlog=config.backlog)
            )

        def promote(self) -> int:
            """Bind the shared port and serve it (called from the control thread)."""
            sock = bind(args.host, args.port, reuse_port=args.reuse_port)
            asyncio.run_coroutine_threadsafe(self.listen(sock), self.loop).result(timeout=30)
            return int(sock.getsockname()[1])

        def stop(self, reason: str) -> None:
            emit({"event": "exiting", "reason": reason})
            self.should_exit = True

    config = uvicorn.Config(
        app,
        loop=event_loop(),
        access_log=False,
        log_level=args.log_level,
        lifespan="off",
        timeout_graceful_shutdown=20,
        server_header=False,
        ws="none",  # HTTP only: an Upgrade request is served as plain HTTP
        # typed as type[asyncio.Protocol]; it is one of uvicorn's HTTP protocol classes
        http=protocol_class(limits, connection_cap(limits)),  # type: ignore[arg-type]
        # uvicorn annotates an int; it only hands the value to loop.call_later (a float)
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=limits.max_header_bytes + 1024,  # ours answer first
    )
    rate_limit_loggers("asyncio", "uvicorn.error")  # e.g. accept() errors once fds run out
    listener = queue_log_lines()
    # uvicorn re-raises the signal it caught once shut down; a no-op handler underneath
    # turns that into a normal return (exit 0) instead of death by SIGTERM.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server = _Server(config)
    control = Control(fd=args.control_fd if ready is not None else None,
                      record=args.record, promote=server.promote, stop=server.stop)  # fmt: skip
    try:
        server.run(sockets=sockets)
    finally:
        listener.stop()  # writes what is still queued


def event_loop() -> str:
    """uvicorn's loop setting: uvloop when installed, else asyncio's own."""
    import importlib.util

    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def queue_log_lines() -> Any:
    """Move the runtime logger's lines off the event loop: with its default stderr
    handler, into a LineWriter (slml/runtime/log_handlers.py: the loop enqueues the finished
    JSON line, a thread writes batches); with other handlers, behind a QueueListener.
    Returns what to ``stop()`` at exit (it writes what is still queued)."""
    import logging.handlers
    import queue
    from types import SimpleNamespace

    from slml.runtime.log_handlers import install_line_writer, uninstall_line_writer
    from slml.runtime.logs import get_logger

    logger = get_logger()
    writer = install_line_writer(logger)
    if writer is not None:  # stop: write what is queued, give the logger back its handler
        return SimpleNamespace(stop=lambda: uninstall_line_writer(logger, writer))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handlers = [h for h in logger.handlers if not isinstance(h, logging.handlers.QueueHandler)]
    listener = logging.handlers.QueueListener(lines, *handlers, respect_handler_level=True)
    for handler in handlers:
        logger.removeHandler(handler)
    logger.addHandler(logging.handlers.QueueHandler(lines))
    listener.start()
    return listener


if __name__ == "__main__":
    sys.exit(main())
