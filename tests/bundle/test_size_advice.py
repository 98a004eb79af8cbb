"""A too-large function bundle names the packages that made it so and offers only the
fixes that apply to the model's framework."""

from __future__ import annotations

import pytest

from slml.bundle.lambda_bundle import choose_delivery
from slml.bundle.size import MB
from slml.bundle.size_advice import too_large_hint
from slml.errors import PackageTooLarge


def test_the_error_names_the_largest_packages() -> None:
    manifest = {"flavor": "catboost", "requirements": ["catboost==1.2.10", "numpy==2.4.6"]}
    largest = (("catboost", 300 * MB), ("plotly", 40 * MB), ("numpy", 30 * MB))
    with pytest.raises(PackageTooLarge) as info:
        choose_delivery(layer_zip=90 * MB, function_zip=MB, unzipped=370 * MB,
                        large_bundle="fail", largest=largest, manifest=manifest)  # fmt: skip
    assert "catboost 300" in str(info.value) and "plotly" in str(info.value)
    hint = info.value.hint or ""
    assert "ONNX" not in hint  # no converter slml can run for CatBoost
    assert "--drop" not in hint  # plotly comes with catboost: not a requirement to drop
    assert "large_bundle: image" in hint
    _, frame_hint = too_large_hint((("pyarrow", 120 * MB),), flavor="statsmodels",
                                   requirements=["statsmodels==0.15.0", "pyarrow==26.0.1"])
    assert "--drop pyarrow" in frame_hint


def test_fixes_follow_the_framework() -> None:
    _, sklearn_hint = too_large_hint((("scipy", 90 * MB),), flavor="sklearn",
                                     requirements=["scikit-learn==1.9.1"])  # fmt: skip
    assert "export='onnx'" in sklearn_hint
    pickled_wrapper = ["xgboost==3.2.0", "scikit-learn==1.9.1"]
    _, wrapper_hint = too_large_hint((("xgboost", 200 * MB),), flavor="sklearn",
                                     requirements=pickled_wrapper)  # fmt: skip
    assert "ONNX" not in wrapper_hint and "flavor 'xgboost'" in wrapper_hint
    _, gpu_hint = too_large_hint((("nvidia-nccl-cu12", 468 * MB),), flavor="xgboost",
                                 requirements=["xgboost==3.2.0"])  # fmt: skip
    assert "nvidia-nccl-cu12" in gpu_hint and "-cpu" in gpu_hint
