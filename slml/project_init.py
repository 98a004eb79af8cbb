"""``slml init``: write a commented slml.yaml for a model artifact.

The CLI parses the options and prints; this module decides the project name, the
model path as written, renders the template and refuses to write a config that
slml.config would reject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from slml.config import CONFIG_FILE, parse_config
from slml.errors import UsageError
from slml.providers.registry import installed
from slml.templates import render


@dataclass(frozen=True)
class Written:
    """What ``init_project`` wrote: the file, and whether the model is there yet."""

    path: Path
    model_exists: bool


def project_name(model: Path) -> str:
    """The default project name: the artifact directory's name as a slug."""
    return re.sub(r"[^a-z0-9-]+", "-", model.resolve().name.lower()).strip("-") or "model"


def model_reference(model: Path, cwd: Path) -> str:
    """The model path as slml.yaml writes it: relative to ``cwd`` when inside it."""
    try:
        return model.resolve().relative_to(cwd).as_posix()
    except ValueError:
        return str(model.resolve())


def init_project(
    *, model: Path, cwd: Path, name: str | None = None, provider: str = "local",
    force: bool = False,
) -> Written:  # fmt: skip
    """Write ``cwd/slml.yaml`` for ``model``. Raises UsageError when the file exists
    (without ``force``) or ``provider`` is not installed, and ConfigError (before
    writing anything) when the result would not be valid, e.g. a bad ``name``."""
    target = cwd / CONFIG_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", hint="pass --force to overwrite it")
    providers = installed()
    if provider not in providers:
        raise UsageError(f"--provider {provider!r} is not one of {', '.join(providers)}")
    text = render(
        "project/slml.yaml.j2", name=name or project_name(model),
        model=model_reference(model, cwd), provider=provider,
    )  # fmt: skip
    parse_config(text, source=CONFIG_FILE)  # never write a config we would reject
    target.write_text(text, encoding="utf-8")
    return Written(path=target, model_exists=model.exists())
