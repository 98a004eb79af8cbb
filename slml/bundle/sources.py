"""Where packages come from: slml.yaml's ``packages:`` (index_url, extra_index_urls,
find_links), added to every ``uv pip compile``/``uv pip install`` slml runs.

The sources of the project in use are set once per session (``use_sources``, called
when slml.yaml is loaded) and read by ``slml.bundle.uvtool.run_uv``, so the local env,
the Lambda layer, the Azure package and the container's measured layer all resolve and
install from the same places; the container build context gets them in its
requirements.lock (slml/bundle/container.py).

uv's own variables keep working as uv defines them: ``UV_INDEX_URL``/``UV_DEFAULT_INDEX``
replace ``index_url`` (the environment wins over the file, as for uv's own config),
``UV_EXTRA_INDEX_URL`` and ``UV_FIND_LINKS`` are added to the file's lists, and the
others (``UV_CONSTRAINT``, ``UV_INDEX``, ...) are left to uv.

Credentials never live in the file: a URL may say ``https://user:${TOKEN}@host/simple``;
``${VAR}`` is expanded from the environment only when uv is run, and messages show the
unexpanded URL.

CPU torch: when ``torch`` is among the requirements and ``cpu_torch`` is on (the
default), a local find-links directory that holds a torch wheel is used (the file's, or
``$UV_FIND_LINKS``/``$PIP_FIND_LINKS``); if none does and no index in use is PyTorch's,
PyTorch's CPU index is added, so PyPI's CUDA build is never picked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from slml.errors import ConfigError

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INDEX_VARS = ("UV_INDEX_URL", "UV_DEFAULT_INDEX")
PIP_FLAGS = ("--index-url", "--extra-index-url", "--find-links")  # requirement-file options


@dataclass(frozen=True)
class Sources:
    """Package sources, URLs unexpanded; ``find_links`` entries are URLs or absolute
    paths."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    cpu_torch: bool = True

    def key(self) -> dict[str, Any]:
        """What a lock's cache key adds for these sources (empty for the defaults)."""
        if self == Sources():
            return {}
        return {"index_url": self.index_url, "extra": list(self.extra_index_urls),
                "find_links": list(self.find_links), "cpu_torch": self.cpu_torch}  # fmt: skip

    def urls(self) -> list[str]:
        """Every index URL, unexpanded (for messages)."""
        return [u for u in (self.index_url, *self.extra_index_urls) if u]


_current: ContextVar[Sources | None] = ContextVar("slml_package_sources", default=None)


def use_sources(packages: Any, *, base_dir: Path) -> Sources:
    """Make slml.yaml's ``packages:`` section the sources of the uv calls that follow in
    this context (relative find_links paths resolve against ``base_dir``)."""
    if packages is None:
        sources = Sources()
    else:
        links = tuple(_absolute(link, base_dir) for link in packages.find_links)
        sources = Sources(
            index_url=packages.index_url,
            extra_index_urls=tuple(packages.extra_index_urls),
            find_links=links,
            cpu_torch=packages.cpu_torch,
        )
    _current.set(sources)
    return sources


def current() -> Sources:
    """The sources set by ``use_sources`` in this context (the defaults otherwise)."""
    return _current.get() or Sources()


def _absolute(link: str, base_dir: Path) -> str:
    if "://" in link:
        return link
    return str((Path(base_dir) / link).resolve())


def check_url(url: str, where: str) -> str:
    """``url`` unless it carries a literal password; raise ValueError naming ``where``."""
    parts = urlsplit(url)
    if parts.password and not _VAR.fullmatch(parts.password):
        shown = url.replace(parts.password, "***")
        raise ValueError(
            f"{shown} has a password in the file; credentials come from the environment: "
            f"write {where} as https://user:${{INDEX_TOKEN}}@host/... (or set uv's "
            "UV_INDEX_URL / UV_EXTRA_INDEX_URL when running slml)"
        )
    return url


def expand(url: str, environ: Mapping[str, str] | None = None) -> str:
    """``url`` with each ``${VAR}`` replaced from the environment. Raises ConfigError
    naming a variable that is not set."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"packages: {url} needs ${{{name}}}, which is not set in the environment",
                hint=f"export {name}=... before running slml (credentials never go in "
                "slml.yaml)",
            )
        return env[name]

    return _VAR.sub(value, url)


def expand_safe(url: str) -> str:
    """``url`` as uv prints it: variables expanded where set, the rest left as is
    (never raises; for matching uv's messages only)."""
    return _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), url)


def _env_list(environ: Mapping[str, str], name: str) -> list[str]:
    return [v for v in re.split(r"[,\s]+", environ.get(name, "")) if v]


def torch_wheel_dirs(links: Iterable[str]) -> list[str]:
    """The local directories among ``links`` that hold a torch wheel."""
    found = []
    for link in links:
        path = Path(link.removeprefix("file://"))
        if _is_local(link) and path.is_dir() and any(path.glob("torch-*.whl")):
            found.append(str(path))
    return found


def uv_args(
    requirement_names: Iterable[str],
    *,
    sources: Sources | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``uv pip`` arguments for ``sources`` (default: the current ones), with
    credentials expanded; the CPU torch source when ``torch`` is required."""
    src = current() if sources is None else sources
    env = os.environ if environ is None else environ
    args: list[str] = []
    if src.index_url and not any(env.get(v) for v in _INDEX_VARS):
        args += ["--index-url", expand(src.index_url, env)]
    extras = [*src.extra_index_urls, *_env_list(env, "UV_EXTRA_INDEX_URL")]
    links = [*src.find_links, *_env_list(env, "UV_FIND_LINKS")]
    if src.cpu_torch and "torch" in set(requirement_names):
        extras, links = _with_cpu_torch(src, extras, links, env)
    for url in dict.fromkeys(extras):
        args += ["--extra-index-url", expand(url, env)]
    for link in dict.fromkeys(links):
        args += ["--find-links", expand(link, env)]
    added = TORCH_CPU_INDEX in extras and TORCH_CPU_INDEX not in src.extra_index_urls
    if added and not env.get("UV_INDEX_STRATEGY"):
        # uv takes a package from the first index that has it; PyTorch's also mirrors
        # numpy and others (not every version): pick the best version across indexes
        args += ["--index-strategy", "unsafe-best-match"]
    return args


def _with_cpu_torch(
    src: Sources, extras: list[str], links: list[str], env: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    if torch_wheel_dirs(links):
        return extras, links
    pip_dirs = torch_wheel_dirs(_env_list(env, "PIP_FIND_LINKS"))
    if pip_dirs:
        return extras, [*links, *pip_dirs]
    indexes = [*src.urls(), *extras, *(env.get(v, "") for v in (*_INDEX_VARS, "UV_INDEX"))]
    if any("download.pytorch.org" in url for url in indexes):
        return extras, links
    return [*extras, TORCH_CPU_INDEX], links


def requirement_lines(
    requirement_names: Iterable[str], *, links_in_context: str | None = None
) -> list[str]:
    """The source lines a requirements file carries for pip (the container build):
    URLs unexpanded (pip expands ``${VAR}`` in requirement files itself); local
    find-links directories become ``links_in_context`` when given, else are dropped."""
    placeholder = {k: "${" + k + "}" for k in _referenced_vars()}
    args = uv_args(requirement_names, environ={**os.environ, **placeholder})
    lines, local = [], False
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag == "--find-links" and _is_local(value):
            local = True
        elif flag in PIP_FLAGS:  # pip already picks the best version across indexes
            lines.append(f"{flag} {value}")
    if local and links_in_context:
        lines.append(f"--find-links {links_in_context}")
    return lines


def _referenced_vars() -> set[str]:
    src = current()
    return {m for url in (*src.urls(), *src.find_links) for m in _VAR.findall(url)}


def _is_local(link: str) -> bool:
    return "://" not in link.removeprefix("file://")


def local_link_dirs(requirement_names: Iterable[str]) -> list[Path]:
    """The local find-links directories the uv calls for these requirements use."""
    placeholder = {k: "${" + k + "}" for k in _referenced_vars()}
    args = uv_args(requirement_names, environ={**os.environ, **placeholder})
    pairs = zip(args[::2], args[1::2], strict=True)
    return [
        Path(v.removeprefix("file://")) for f, v in pairs if f == "--find-links" and _is_local(v)
    ]


def wheels_for(pins: Iterable[str], requirement_names: Iterable[str]) -> list[Path]:
    """The wheel files in the local find-links directories that match a ``name==version``
    pin of ``pins`` (what a container build must receive in its context)."""
    wanted = set()
    for pin in pins:
        name, _, version = pin.partition("==")
        if version:
            wanted.add((re.sub(r"[-_.]+", "-", name).lower(), version.strip().lower()))
    found = []
    for directory in local_link_dirs(requirement_names):
        for wheel in sorted(Path(directory).glob("*.whl")):
            name, version = wheel.name.split("-")[:2]
            if (re.sub(r"[-_.]+", "-", name).lower(), version.lower()) in wanted:
                found.append(wheel)
    return found
