"""The image's dependency layer ships what importing the model's and the runtime's
frameworks reads as bytecode only (slml_bytecode.py in the Dockerfile), unless
``requirements.source_code: keep``; the size predicted here follows the same steps."""

from __future__ import annotations

import pytest

from slml.bundle.container import build_container_context
from slml.bundle.container_layer import LayerSteps
from slml.config.sections import RequirementsConfig

KEEP = RequirementsConfig(source_code="keep")


def walk_line(dockerfile: str) -> str:
    return next(line for line in dockerfile.splitlines() if "slml_bytecode.py --site" in line)


def test_the_walked_names_are_the_models_and_the_runtimes() -> None:
    steps = LayerSteps.of(["scikit-learn==1.9.1", "NumPy>=2"])
    assert steps.names == ("httptools", "numpy", "orjson", "scikit-learn", "uvicorn", "uvloop")
    assert steps.arguments() == "httptools numpy orjson scikit-learn uvicorn uvloop"
    kept = LayerSteps.of(["scikit-learn"], keep_sources=True)
    assert kept.arguments().startswith("--keep-sources httptools ")


def test_source_code_keep_reaches_the_dockerfile(tmp_path, _iris_artifact_master) -> None:
    texts = {}
    for name, changes in (("auto", None), ("keep", KEEP)):
        bundle = build_container_context(
            _iris_artifact_master, tmp_path / name, provider="gcp", cache_dir=tmp_path / "cache",
            measure=False, requirements_changes=changes,
        )  # fmt: skip
        texts[name] = walk_line((bundle.path / "Dockerfile").read_text())
    assert "--keep-sources" not in texts["auto"] and "scikit-learn uvicorn" in texts["auto"]
    assert texts["keep"] == texts["auto"].replace("--lock /app/requirements.lock ",
                                                  "--lock /app/requirements.lock --keep-sources ")


@pytest.mark.slow
def test_the_predicted_layer_is_smaller_without_the_sources(tmp_path, _iris_artifact_master):
    """Measured here as the image builds it (this interpreter is 3.11, the context's):
    bytecode only for what the walk reads is smaller than every source kept."""
    sizes = {}
    for name, changes in (("auto", None), ("keep", KEEP)):
        bundle = build_container_context(
            _iris_artifact_master, tmp_path / name, provider="gcp", python_version="3.11",
            cache_dir=tmp_path / "cache", requirements_changes=changes,
        )  # fmt: skip
        sizes[name] = bundle.size.parts["dependencies"]
    assert sizes["auto"] < sizes["keep"] - 15 * 1024 * 1024  # scikit-learn's sources, mostly


def test_symbols_keep_leaves_the_strip_out_of_the_dockerfile(tmp_path, _iris_artifact_master):
    """``requirements.symbols: keep``: the layer's RUN line does not run slml_strip.py;
    the default does."""
    runs = {}
    for name, changes in (("strip", None), ("keep", RequirementsConfig(symbols="keep"))):
        bundle = build_container_context(
            _iris_artifact_master, tmp_path / name, provider="gcp", cache_dir=tmp_path / "cache",
            measure=False, requirements_changes=changes,
        )  # fmt: skip
        runs[name] = (bundle.path / "Dockerfile").read_text()
    assert "&& python /app/slml_strip.py --site" in runs["strip"]
    assert "&& python /app/slml_strip.py --site" not in runs["keep"]
    assert LayerSteps.of([], keep_symbols=True).arguments() == LayerSteps.of([]).arguments()
