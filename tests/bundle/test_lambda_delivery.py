"""lambda_outputs: the builder's typed decision wins; a hand-made bundle is read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from slml.bundle.lambda_delivery import DIRECT_UPLOAD_LIMIT, lambda_outputs
from slml.errors import PackagingError
from slml.pipeline import Bundle, LambdaBuildOutputs, SizeReport


def bundle(tmp_path: Path, *, files: dict[str, Path], parts: dict[str, int], outputs=None):
    return Bundle(
        provider="aws", path=tmp_path, lock_hash="l", model_sha256="m", python_version="3.12",
        platform="x86_64-manylinux_2_34", size=SizeReport(unzipped=1, parts=parts),
        files=files, outputs=outputs,
    )  # fmt: skip


def test_the_builders_decision_is_read_not_recomputed(tmp_path):
    decided = LambdaBuildOutputs(
        function_zip=tmp_path / "f.zip", layer_zip=tmp_path / "l.zip", function_dir=tmp_path,
        layer_dir=tmp_path, delivery="s3", reason="the builder said so",
    )  # fmt: skip
    # sizes that would recompute to "direct": the typed decision must win
    made = bundle(tmp_path, files={"zip": tmp_path / "x.zip"}, parts={}, outputs=decided)
    assert lambda_outputs(made) is decided


@pytest.mark.parametrize(
    ("files", "big", "expected"),
    [({}, 10, "direct"), ({}, DIRECT_UPLOAD_LIMIT + 1, "s3"), ({"image": "ctx"}, 10, "image")],
)
def test_a_hand_made_bundle_is_read_back_from_its_files(tmp_path, files, big, expected):
    named = {"zip": tmp_path / "function.zip"} | {k: tmp_path / v for k, v in files.items()}
    made = bundle(tmp_path, files=named, parts={"layer_zipped": big, "function_zipped": 1})
    out = lambda_outputs(made)
    assert out.delivery == expected and out.function_zip == tmp_path / "function.zip"
    assert out.layer_zip is None and out.image_context == named.get("image")


def test_a_bundle_without_a_function_zip_is_a_packaging_error(tmp_path):
    with pytest.raises(PackagingError, match="no function zip"):
        lambda_outputs(bundle(tmp_path, files={}, parts={}))
