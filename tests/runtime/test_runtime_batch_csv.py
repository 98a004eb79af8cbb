"""The CSV fast path of batch scoring (numpy's C reader) decides exactly as the endpoint's
per-field checks: on every input where it answers, it answers what the exact path does,
and where a line is not plainly numbers it hands over to the exact path."""

from __future__ import annotations

from pathlib import Path

import pytest

from slml.runtime import batch
from slml.runtime.batch import score_csv
from slml.runtime.loader import LoadedModel, load

PLAIN = "5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n7.7,3.0,6.1,2.3\n"
EDGES = {
    "plain": PLAIN,
    "no final line end": PLAIN.rstrip("\n"),
    "CRLF": PLAIN.replace("\n", "\r\n"),
    "spaces around fields": " 5.1 , 3.5,1.4 ,0.2\n" + PLAIN,
    "signs, exponents, bare dots": "+5.1,-3.5,1e0,.2\n5.,3.5E0,1.40,0.2\n",
    "integers": "5,3,1,0\n",
    "underscores (float() takes them)": "1_0,3.5,1.4,0.2\n" + PLAIN,
    "nan": PLAIN + "nan,3.5,1.4,0.2\n",
    "infinity": "inf,3.5,1.4,0.2\n" + PLAIN,
    "overflow": PLAIN + "1e400,3.5,1.4,0.2\n",
    "a word": PLAIN + "abc,3.5,1.4,0.2\n",
    "hex": "0x1A,3.5,1.4,0.2\n" + PLAIN,
    "missing field": PLAIN + "5.1,,1.4,0.2\n",
    "too few fields": "5.1,3.5,1.4\n" + PLAIN,
    "too many fields": PLAIN + "5.1,3.5,1.4,0.2,9\n",
    "a blank line": "5.1,3.5,1.4,0.2\n\n6.2,2.9,4.3,1.3\n",
    "quoted fields": '"5.1",3.5,1.4,0.2\n' + PLAIN,
    "a comment sign": "#5.1,3.5,1.4,0.2\n" + PLAIN,
}


@pytest.fixture(scope="module")
def model(_iris_artifact_master: Path) -> LoadedModel:
    return load(_iris_artifact_master)  # only read


def exact(model: LoadedModel, text: str, monkeypatch: pytest.MonkeyPatch) -> batch.Scored:
    with monkeypatch.context() as m:
        m.setattr(batch, "_csv_fast_path", lambda *a, **k: None)
        return score_csv(model, text, width=4, features=[0, 1, 2, 3], keep=[])


@pytest.mark.parametrize("text", EDGES.values(), ids=EDGES.keys())
def test_the_fast_path_answers_as_the_exact_path(model: LoadedModel, text: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fast = score_csv(model, text, width=4, features=[0, 1, 2, 3], keep=[])
    assert fast == exact(model, text, monkeypatch)


@pytest.mark.parametrize("name", ["plain", "no final line end", "CRLF", "spaces around fields",
                                  "signs, exponents, bare dots", "integers"])
def test_plain_numbers_take_the_fast_path(model: LoadedModel, name: str) -> None:
    taken = batch._csv_fast_path(model, EDGES[name], width=4, features=[0, 1, 2, 3])
    assert taken is not None and len(taken) == EDGES[name].strip().count("\n") + 1


@pytest.mark.parametrize("name", ["underscores (float() takes them)", "nan", "infinity",
                                  "overflow", "a word", "hex", "missing field", "too few fields",
                                  "too many fields", "a blank line", "quoted fields",
                                  "a comment sign"])
def test_anything_else_is_left_to_the_exact_path(model: LoadedModel, name: str) -> None:
    assert batch._csv_fast_path(model, EDGES[name], width=4, features=[0, 1, 2, 3]) is None


def test_columns_are_picked_and_reordered_by_feature_index(model: LoadedModel,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    text = "x,0.2,1.4,3.5,5.1\ny,1.3,4.3,2.9,6.2\n"  # an id column, then the features reversed
    fast = batch._csv_fast_path(model, text, width=5, features=[4, 3, 2, 1])
    assert fast is None  # the id column is not a number: loadtxt refuses the whole text
    numeric = "9,0.2,1.4,3.5,5.1\n8,1.3,4.3,2.9,6.2\n"
    fast = batch._csv_fast_path(model, numeric, width=5, features=[4, 3, 2, 1])
    assert fast == exact(model, "5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n", monkeypatch).predictions


def test_the_ok_rows_travel_as_a_count_and_come_back_as_a_list() -> None:
    whole = batch.Scored(list(range(5)), [0] * 5)
    assert whole.as_dict()["ok"] == 5
    assert batch.Scored.from_dict(whole.as_dict()) == whole
    holes = batch.Scored([0, 2, 3], [1, 1, 1], [(1, "invalid_input", "x")])
    assert holes.as_dict()["ok"] == [0, 2, 3]
    assert batch.Scored.from_dict(holes.as_dict()) == holes


def test_a_model_that_fails_on_some_rows_of_a_clean_partition_loses_only_those(
    model: LoadedModel,
) -> None:
    import numpy as np

    def picky(batch):  # fails whenever the batch holds a row starting with 6.2
        if any(row[0] == 6.2 for row in batch.rows):
            raise ValueError("cannot score 6.2")
        return [0] * len(batch.rows)

    flaky = LoadedModel(model.manifest, model.path, picky, model.spec)
    for scored in (score_csv(flaky, PLAIN, width=4, features=[0, 1, 2, 3], keep=[]),
                   batch.score_array(flaky, np.loadtxt(PLAIN.splitlines(), delimiter=","))):
        assert scored.ok == [0, 2] and scored.predictions == [0, 0]
        assert [(i, code) for i, code, _ in scored.errors] == [(1, "model_error")]
