"""Jinja2 templates as files under ``slml/templates/<target>/``, rendered through one
function with ``StrictUndefined`` so a missing variable is an error, never a blank."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES_DIR = Path(__file__).parent


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # we render Dockerfiles, Python and JSON, not HTML
    )


def render(template: str, /, **context: Any) -> str:
    """Render ``slml/templates/<template>`` (e.g. ``"gcp/Dockerfile.j2"``) with ``context``."""
    return _environment().get_template(template).render(**context)


def render_to(template: str, dest: Path, /, **context: Any) -> Path:
    """Render a template into ``dest`` (parents created) and return ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render(template, **context), encoding="utf-8")
    return dest
