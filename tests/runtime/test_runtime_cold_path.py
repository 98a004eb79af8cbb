"""The pieces that keep the Lambda path's imports small behave as what they replace:
``Record`` as a frozen dataclass, ``LineLogger`` as logging's stderr handler, request
ids as ``uuid.uuid4().hex``, the built-in SHA-256 as OpenSSL's."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import uuid

import pytest

from slml.runtime import manifest
from slml.runtime.app import new_request_id
from slml.runtime.logs import ERROR, INFO, LineLogger, log_event
from slml.runtime.validation import Batch, Feature, InputSpec


def test_records_compare_hash_and_show_their_fields_and_refuse_assignment() -> None:
    a = InputSpec("tensor", (Feature("x", "float32"),), "float32", (1,))
    b = InputSpec("tensor", (Feature("x", "float32"),), "float32", (1,))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != InputSpec("tensor", (Feature("x", "float64"),), "float64", (1,))
    assert a.float_limits == (3.4028234663852886e38,)  # computed once, with the spec
    assert repr(Feature("x", "int64")) == "Feature(name='x', dtype='int64', nullable=False)"
    with pytest.raises(AttributeError, match="frozen"):
        a.kind = "columns"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del a.dtype  # type: ignore[misc]
    batch = Batch(rows=[[1.0]], raw=None, key="instances", validated=True)
    assert len(batch) == 1 and batch.columns is None and batch.dtype is None
    with pytest.raises(TypeError):  # a list inside: unhashable, as with the dataclass
        hash(batch)


def test_line_logger_writes_one_json_line_per_event_at_or_above_its_level() -> None:
    out = io.StringIO()
    logger = LineLogger(level=INFO, stream=lambda: out)
    log_event(logger, INFO, "request", status=200)
    log_event(logger, 10, "debug: dropped")
    log_event(logger, ERROR, "model_error", error="boom")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["event"], r["level"], r["severity"]) for r in lines] == [
        ("request", "info", "INFO"), ("model_error", "error", "ERROR")]  # fmt: skip
    assert logger.name == "slml.runtime"


def test_line_logger_never_fails_when_stderr_is_gone() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise ValueError("I/O operation on closed file")

    LineLogger(stream=Closed).log(INFO, "lost, not raised")


def test_request_ids_are_version_4_uuids_in_hex() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        parsed = uuid.UUID(hex=rid)
        assert parsed.hex == rid and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_small_files_hash_with_the_built_in_sha256_and_big_ones_with_openssl(
    tmp_path, monkeypatch
) -> None:
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(os.urandom(1000))
    big.write_bytes(os.urandom(manifest.SMALL_HASH_BYTES + 1))
    assert manifest.sha256_file(small) == hashlib.sha256(small.read_bytes()).hexdigest()
    assert manifest.sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    monkeypatch.setattr(manifest, "_built_in_budget", manifest.SMALL_HASH_BYTES)
    monkeypatch.delitem(sys.modules, "hashlib")  # as in a fresh process
    assert type(manifest.sha256(1000)).__module__ in ("_sha2", "_sha256")
    assert manifest._built_in_budget == manifest.SMALL_HASH_BYTES - 1000
    assert type(manifest.sha256(manifest.SMALL_HASH_BYTES)).__module__ == "_hashlib"
