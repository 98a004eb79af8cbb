"""Register a plug-in the way an installed package does: a ``*.dist-info`` directory
with ``METADATA`` and ``entry_points.txt`` on ``sys.path`` (or ``PYTHONPATH`` for a
process), beside the plug-in's source."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "provider-docker"


def dist_info(root: Path, package: str, entry_points: dict[str, str]) -> Path:
    """Write ``<package>-0.1.0.dist-info`` under ``root`` with ``entry_points`` in group
    ``slml.providers``; returns ``root``, the directory to put on the path."""
    info = root / f"{package.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1.0\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[slml.providers]\n{lines}", encoding="utf-8")
    return root


def docker_plugin(root: Path) -> list[Path]:
    """The paths that make examples/provider-docker importable and registered."""
    dist_info(root, "slml-provider-docker", {"docker": "slml_provider_docker:DockerProvider"})
    return [root, EXAMPLE]
