"""The container build context gets the same package sources as uv: slml.yaml's
packages: as requirements.lock's first lines (``${VAR}`` left for pip), and the local
find-links wheels the lock pins inside the context, mounted for pip's install."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from slml.bundle import sources
from slml.bundle.container import build_container_context
from slml.config import parse_config

torch = pytest.importorskip("torch")
WHEELS = Path(os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()[0])
pytestmark = pytest.mark.skipif(
    not list(WHEELS.glob("torch-*.whl")), reason=f"no local torch wheel in {WHEELS}"
)


LOCAL_INDEX = Path("/opt/pypi")  # a simple index on disk, served over HTTP on 127.0.0.1


@pytest.fixture(autouse=True)
def _default_sources(tmp_path: Path) -> Iterator[None]:
    yield
    sources.use_sources(None, base_dir=tmp_path)


@pytest.fixture
def index_port() -> Iterator[int]:
    """An HTTP simple index (it ignores the credentials the URL carries)."""
    if not (LOCAL_INDEX / "simple").is_dir():
        pytest.skip(f"no local simple index at {LOCAL_INDEX}")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(LOCAL_INDEX))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class Net(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


@pytest.mark.timeout(900)
def test_a_torch_context_carries_its_sources_and_wheel(tmp_path: Path, index_port: int) -> None:
    from slml.artifact import save_model

    artifact = save_model(torch.jit.script(Net()), tmp_path / "artifact").path
    config = parse_config(
        "name: ab\nmodel: artifact\npackages:\n"
        f"  extra_index_urls: ['http://u:${{SLML_TEST_TOKEN}}@127.0.0.1:{index_port}/simple']\n"
        f"  find_links: [{WHEELS}]\n"
    )
    sources.use_sources(config.packages, base_dir=tmp_path)
    os.environ["SLML_TEST_TOKEN"] = "not-in-the-context"
    try:
        bundle = build_container_context(
            artifact, tmp_path / "ctx", provider="gcp", cache_dir=tmp_path / "cache",
            measure=False,
        )  # fmt: skip
    finally:
        del os.environ["SLML_TEST_TOKEN"]
    lock = (bundle.path / "requirements.lock").read_text()
    assert lock.splitlines()[:2] == [
        f"--extra-index-url http://u:${{SLML_TEST_TOKEN}}@127.0.0.1:{index_port}/simple",
        "--find-links /app/wheels",
    ]
    assert "not-in-the-context" not in lock
    torch_pin = next(line for line in lock.splitlines() if line.startswith("torch=="))
    assert torch_pin.startswith("torch==2.13.0")
    shipped = [p.name for p in (bundle.path / "wheels").iterdir()]
    assert len(shipped) == 1 and shipped[0].startswith("torch-2.13.0")
    dockerfile = (bundle.path / "Dockerfile").read_text()
    assert "--mount=type=bind,source=wheels,target=/app/wheels" in dockerfile
    assert "!wheels/" in (bundle.path / ".dockerignore").read_text()
