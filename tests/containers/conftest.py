"""Fixtures for the tests that run slml's artifacts in real containers.

No engine and not in CI: every test here skips with one line saying why. ``CI=true``
and no engine: they fail. Base images are built on first use (images/build.py, cached
by recipe); bundles are built with the same builders users run, into a cache shared by
the session (``$SLML_TEST_CACHE`` keeps wheels and layers across runs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers.engine import Engine, find_engine
from containers.images import build
from containers.images.recipes import BaseImage
from containers.proxy import IndexProxy

FIGURES: dict[str, object] = {}
BASES: set[str] = set()  # base image tags the session ensured (kept at its end)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The engine, left as found: images the session built are removed at its end.

    Base images (images/build.py, cached by recipe) stay, so the next run reuses them.
    Under the vfs storage driver every layer is a full copy, so the bundles' images of
    one run take gigabytes; the disk is shared with whatever runs next.
    """
    found, why = find_engine()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {why}: the container tests must run in CI", pytrace=False)
        pytest.skip(why)
    before = found.image_ids()
    yield found
    keep = {found.inspect_image(tag)["Id"] for tag in BASES if found.inspect_image(tag)}
    found.remove_images(found.image_ids() - before - keep)


@pytest.fixture(scope="session")
def base_image(engine):
    def ensure(recipe: BaseImage) -> str:
        tag = build.ensure(engine, recipe)
        BASES.add(tag)
        FIGURES[f"image size {tag}"] = engine.image_size(tag)
        return tag

    return ensure


@pytest.fixture(scope="session")
def index_proxy():
    with IndexProxy() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def bundle_cache(tmp_path_factory) -> Path:
    shared = os.environ.get("SLML_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("bundle-cache")


def record(key: str, value: object) -> None:
    """A figure for the closing summary (and ``$SLML_CONTAINER_FIGURES`` as JSON)."""
    FIGURES[key] = value


def record_layers(engine: Engine, tag: str, parts: dict[str, str]) -> None:
    """Record the size of the layers whose command ends with each ``parts`` value."""
    layers = engine.layer_sizes(tag)
    for label, end in parts.items():
        size = sum(n for by, n in layers if by.rstrip().endswith(end))
        record(f"image size {tag} {label}", size)


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("container figures")
    for key, value in sorted(FIGURES.items()):
        if isinstance(value, float):
            value = f"{value:.2f} s"
        elif isinstance(value, int) and key.startswith("image size"):
            value = f"{value / 1e6:.1f} MB"
        terminalreporter.write_line(f"{key}: {value}")
    target = os.environ.get("SLML_CONTAINER_FIGURES")
    if target:
        Path(target).write_text(json.dumps(FIGURES, indent=2, sort_keys=True))
