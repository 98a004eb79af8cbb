"""onnx flavor: graphs with several named inputs, post-processing, and a tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.artifact import load_model, save_model
from slml.artifact.flavors.onnx import OnnxModel
from slml.errors import ArtifactError
from slml.runtime.errors import RequestError


def token_graph(vocab: int = 50, classes: int = 3) -> Any:
    """logits = mean over tokens of embedding[input_ids] * attention_mask: two int64
    inputs of shape [batch, seq], one float output [batch, classes]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = numpy_helper.from_array(rng.normal(size=(vocab, classes)).astype("float32"), "emb")
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["g"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),
        helper.make_node("Mul", ["g", "m3"], ["gm"]),
        helper.make_node("ReduceMean", ["gm", "axis1"], ["logits"], keepdims=0),
    ]
    consts = [numpy_helper.from_array(np.array([2], "int64"), "axis2"),
              numpy_helper.from_array(np.array([1], "int64"), "axis1")]  # fmt: skip
    graph = helper.make_graph(nodes, "tok", [ids, mask], [out], initializer=[table, *consts])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what this onnxruntime reads
    return model, table


def expected_logits(table: Any, ids: list[list[int]], mask: list[list[int]]) -> Any:
    from onnx import numpy_helper

    emb = numpy_helper.to_array(table)
    g = emb[np.asarray(ids)] * np.asarray(mask, dtype="float32")[..., None]
    return g.mean(axis=1)


ROWS = [
    {"input_ids": [1, 2, 3, 0], "attention_mask": [1, 1, 1, 0]},
    {"input_ids": [4, 5, 6, 7], "attention_mask": [1, 1, 1, 1]},
]


def test_two_named_inputs_per_row_and_per_column(tmp_path: Path) -> None:
    graph, table = token_graph()
    info = save_model(graph, tmp_path / "m", sample_input=ROWS)
    options = info.manifest["flavor_options"]
    assert [i["name"] for i in options["inputs"]] == ["input_ids", "attention_mask"]
    assert options["inputs"][0] == {"name": "input_ids", "dtype": "int64", "shape": [-1, -1]}
    assert info.manifest["signature"]["inputs"]["kind"] == "tensors"
    model = load_model(tmp_path / "m")
    want = expected_logits(table, [r["input_ids"] for r in ROWS],
                           [r["attention_mask"] for r in ROWS])  # fmt: skip
    np.testing.assert_allclose(model.predict({"instances": ROWS}), want, rtol=1e-5)
    columns = {"input_ids": [r["input_ids"] for r in ROWS],
               "attention_mask": [r["attention_mask"] for r in ROWS]}  # fmt: skip
    np.testing.assert_allclose(model.predict({"inputs": columns}), want, rtol=1e-5)
    # a sample given as columns works at save too
    save_model(graph, tmp_path / "c", sample_input=columns)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"input_ids": [1, 2]}], "row 0: lacks attention_mask"),
        ([{**ROWS[0], "extra": [1]}], "has unknown extra"),
        ([[1, 2, 3]], "row 0 must be an object with the inputs input_ids, attention_mask"),
        ([{"input_ids": [1, "a"], "attention_mask": [1, 1]}], "input 'input_ids'"),
        ([ROWS[0], {"input_ids": [1], "attention_mask": [1]}], "pad every row"),
    ],
)
def test_named_inputs_that_do_not_fit_are_422(tmp_path: Path, rows: Any, message: str) -> None:
    graph, _ = token_graph()
    save_model(graph, tmp_path / "m")
    with pytest.raises(RequestError, match=message) as caught:
        load_model(tmp_path / "m").predict({"instances": rows})
    assert caught.value.status == 422


@pytest.mark.parametrize("op", ["argmax", "softmax", "label_score"])
def test_postprocess_answers_labels_not_logits(tmp_path: Path, op: str) -> None:
    graph, table = token_graph()
    labels = ["neg", "neu", "pos"]
    wrapped = OnnxModel(graph, postprocess=op, labels=labels)
    info = save_model(wrapped, tmp_path / op, sample_input=ROWS)
    assert info.manifest["flavor_options"]["postprocess"] == {"op": op, "labels": labels}
    logits = expected_logits(table, [r["input_ids"] for r in ROWS],
                             [r["attention_mask"] for r in ROWS])  # fmt: skip
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = load_model(tmp_path / op).predict({"instances": ROWS})
    if op == "argmax":
        assert got == [labels[i] for i in logits.argmax(axis=1)]
    elif op == "softmax":
        np.testing.assert_allclose(got, probs, rtol=1e-5)
    else:
        assert [g["label"] for g in got] == [labels[i] for i in logits.argmax(axis=1)]
        np.testing.assert_allclose([g["score"] for g in got], probs.max(axis=1), rtol=1e-5)
        assert info.manifest["signature"]["outputs"]["kind"] == "records"


def test_postprocess_options_are_checked(tmp_path: Path) -> None:
    graph, _ = token_graph()
    with pytest.raises(ArtifactError, match="not one of softmax, argmax, label_score"):
        save_model(OnnxModel(graph, postprocess="max"), tmp_path / "a")
    with pytest.raises(ArtifactError, match="needs labels"):
        save_model(OnnxModel(graph, postprocess="argmax"), tmp_path / "b")


def train_tokenizer(path: Path) -> Path:
    """A WordPiece tokenizer trained here on a few sentences (no hub)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=50, special_tokens=["[PAD]", "[UNK]"])
    tok.train_from_iterator(["good film", "bad film", "a good day", "a bad day"] * 5, trainer)
    tok.save(str(path))
    return path


def test_strings_through_a_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    graph, table = token_graph()
    tokenizer = train_tokenizer(tmp_path / "tokenizer.json")
    wrapped = OnnxModel(graph, postprocess="argmax", labels=["a", "b", "c"],
                        tokenizer=tokenizer, max_length=8)  # fmt: skip
    info = save_model(wrapped, tmp_path / "m", sample_input=["good film", "a bad day"])
    assert info.manifest["signature"]["inputs"] == {"kind": "tensor", "dtype": "string",
                                                    "shape": [-1]}  # fmt: skip
    assert any(r.startswith("tokenizers==") for r in info.manifest["requirements"])
    assert "model/tokenizer.json" in info.files
    texts = ["good film", "a bad day, a good film"]
    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    want = expected_logits(table, [e.ids for e in enc], [e.attention_mask for e in enc])
    model = load_model(tmp_path / "m")
    assert model.predict({"instances": texts}) == [["a", "b", "c"][i] for i in want.argmax(1)]
    with pytest.raises(RequestError, match="expected a string"):
        model.predict({"instances": [3]})


def test_a_tokenizer_cannot_feed_other_inputs(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    nodes = [helper.make_node("Identity", ["pixels"], ["y"])]
    graph = helper.make_model(helper.make_graph(nodes, "id", [x], [y]), ir_version=9)
    tokenizer = train_tokenizer(tmp_path / "tokenizer.json")
    with pytest.raises(ArtifactError, match="also takes pixels"):
        save_model(OnnxModel(graph, tokenizer=tokenizer), tmp_path / "m")
