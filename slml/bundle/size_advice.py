"""What to say when a function bundle is too large: the packages that made it so, and
only the fixes that apply to this model's framework."""

from __future__ import annotations

import re
from collections.abc import Sequence

from slml.bundle.size import human

IMAGE = "set `aws.large_bundle: image` to deploy a container image (up to 10 GB)"
ONNX = (
    "export the model to ONNX (save_model(..., export='onnx'): onnxruntime and numpy "
    "replace scikit-learn and SciPy)"
)
NATIVE = {
    "xgboost": "save the Booster natively (flavor 'xgboost': model.json needs xgboost and "
    "numpy only, no scikit-learn or SciPy)",
    "lightgbm": "save the Booster natively (flavor 'lightgbm': model.txt, no scikit-learn)",
}
_GPU = re.compile(r"^(nvidia|cuda|cupy|torch-cuda|triton)", re.IGNORECASE)


def too_large_hint(
    largest: Sequence[tuple[str, int]], *, flavor: str | None, requirements: Sequence[str]
) -> tuple[str, str]:
    """``(what made it large, the fixes that apply)`` for a too-large bundle."""
    top = list(largest[:4])
    what = ", ".join(f"{name} {human(size)}" for name, size in top)
    names = {_name(r) for r in requirements}
    fixes: list[str] = []
    gpu = [name for name, _ in top if _GPU.match(name)]
    if gpu:
        fixes.append(
            f"drop the GPU libraries ({', '.join(gpu)}): install the framework's CPU-only "
            "wheel (slml save --drop NAME -r NAME-cpu==VERSION where one exists)"
        )
    if flavor in (None, "sklearn") and not (names & {"catboost", "xgboost", "lightgbm"}):
        fixes.append(ONNX)
    if flavor == "sklearn":
        fixes += [fix for framework, fix in NATIVE.items() if framework in names]
    big_extras = [n for n, _ in top if n in ("pyarrow", "pandas", "matplotlib", "plotly")
                  and n in names]  # only a direct requirement can be dropped
    if big_extras:
        fixes.append(
            f"leave out what serving does not use ({', '.join(big_extras)}): "
            f"slml save --drop {big_extras[0]} (the save-time check tells if the model needs it)"
        )
    fixes.append(IMAGE)
    return (f"largest packages: {what}" if what else ""), "; or ".join(fixes)


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""
