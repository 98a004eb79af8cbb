"""Connection limits of the HTTP server, from the environment (stdlib only).

    SLML_IDLE_TIMEOUT      5     seconds a connection may sit with no request in
                                 progress (fresh or kept alive) before it is closed
    SLML_HEADER_TIMEOUT    10    seconds from a request's first byte until its head is in
                                 (408 after that)
    SLML_BODY_TIMEOUT      30    seconds from the end of the head until the whole body is
                                 in (408 after that)
    SLML_MAX_REQUEST_LINE  8192  bytes of the request line (414 over it)
    SLML_MAX_HEADER_BYTES  16384 bytes of request line plus headers (431 over it)
    SLML_MAX_CONNECTIONS   (fd)  open connections; by default three quarters of the
                                 file descriptors left at start-up. Over it the longest
                                 idle connection is closed, or the newcomer gets a 503
    SLML_HTTP              auto  the HTTP/1.1 parser: httptools (C, llhttp) when it is
                                 installed, else h11 (pure Python); or force either

Values must be positive numbers (SLML_HTTP one of auto, httptools, h11);
``limits_from_env`` raises ValueError naming the variable otherwise. Lingering after an
early answer is bounded by ``LINGER_SECONDS`` and ``LINGER_BYTES`` (constants, not
settings).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

LINGER_SECONDS = 5.0
LINGER_BYTES = 64 * 1024 * 1024
FD_SHARE_FOR_CONNECTIONS = 0.75
PARSERS = ("auto", "httptools", "h11")


@dataclass(frozen=True)
class Limits:
    idle_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_request_line: int = 8192
    max_header_bytes: int = 16384
    max_connections: int | None = None  # None: derived from the descriptor limit
    linger_seconds: float = LINGER_SECONDS
    linger_bytes: int = LINGER_BYTES
    parser: str = "auto"  # auto | httptools | h11 (slml.runtime.protocol.parser_name)


_SECONDS = {
    "idle_timeout": "SLML_IDLE_TIMEOUT",
    "header_timeout": "SLML_HEADER_TIMEOUT",
    "body_timeout": "SLML_BODY_TIMEOUT",
}
_COUNTS = {
    "max_request_line": "SLML_MAX_REQUEST_LINE",
    "max_header_bytes": "SLML_MAX_HEADER_BYTES",
    "max_connections": "SLML_MAX_CONNECTIONS",
}


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    """The limits, defaults overridden by the ``SLML_*`` variables that are set."""
    env = os.environ if environ is None else environ
    values: dict[str, float | int] = {}
    for field, name in _SECONDS.items():
        if env.get(name):
            values[field] = _positive(name, env[name], float)
    for field, name in _COUNTS.items():
        if env.get(name):
            values[field] = _positive(name, env[name], int)
    parser = env.get("SLML_HTTP") or "auto"
    if parser not in PARSERS:
        raise ValueError(f"SLML_HTTP={parser!r} is not one of {', '.join(PARSERS)}")
    # each key is a field of Limits and each value of that field's type (float or int),
    # which one dict[str, float | int] cannot say
    return Limits(**values, parser=parser)  # type: ignore[arg-type]


def _positive(name: str, raw: str, kind: type[float] | type[int]) -> float | int:
    try:
        value = kind(raw)
    except ValueError:
        noun = "a number of seconds" if kind is float else "a whole number"
        raise ValueError(f"{name}={raw!r} is not {noun}") from None
    if not value > 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


def connection_cap(limits: Limits) -> int:
    """How many connections to keep open at most: the configured number, capped by
    ``FD_SHARE_FOR_CONNECTIONS`` of the descriptors not yet in use. The rest stays
    free for accepting (a burst is accepted before any connection can be closed), log
    files and the model's own needs."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    budget = max(1, int((soft - _open_descriptors()) * FD_SHARE_FOR_CONNECTIONS))
    return min(limits.max_connections, budget) if limits.max_connections else budget


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc: assume a small process
        return 32
