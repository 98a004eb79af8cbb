"""The output of a batch job: a partition's Parquet file holds its rows and predictions as
they were scored, error files exist only for partitions with failed rows, and the
gathered errors.jsonl is every error in row order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from slml.batch.sink import Output
from slml.batch.source import Chunk
from slml.runtime.batch import Scored


def chunk(index: int, size: int) -> Chunk:
    return Chunk(index, index * size, ("a",), [], True, csv="", size=size)


def test_clean_partitions_have_no_error_file_and_errors_gather_in_row_order(
    tmp_path: Path,
) -> None:
    out = Output(str(tmp_path / "out"), fmt="parquet", keep=())
    out.prepare({"job": 1}, overwrite=False)
    stale = tmp_path / "out" / "errors" / "part-00000.jsonl"
    stale.write_text('{"row": 1, "code": "model_error", "message": "an earlier run"}\n')
    out.write(chunk(0, 4), Scored([0, 1, 2, 3], ["a", "b", "a", "c"]), kept={}, seconds=0)
    out.write(chunk(1, 4), Scored([0, 3], [1.5, None], [(1, "invalid_input", "no"),
                                                        (2, "unreadable_row", "short")]),
              kept={}, seconds=0)  # fmt: skip
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "out" / "errors").iterdir()) == ["part-00001.jsonl"]
    gathered = Path(out.gather_errors(2)).read_text()
    assert [json.loads(line)["row"] for line in gathered.splitlines()] == [5, 6]

    first = pq.read_table(tmp_path / "out" / "part-00000.parquet")
    assert first.column("row").to_pylist() == [0, 1, 2, 3]
    assert first.column("prediction").to_pylist() == ["a", "b", "a", "c"]
    second = pq.read_table(tmp_path / "out" / "part-00001.parquet").to_pylist()
    assert second == [{"row": 4, "prediction": 1.5}, {"row": 7, "prediction": None}]
    done = json.loads((tmp_path / "out" / "_done" / "part-00001.json").read_text())
    assert (done["rows"], done["predictions"], done["errors"]) == (4, 2, 2)


WRITE_ARRAY = """
import sys
import numpy as np
from slml.batch.sink import Output
from slml.batch.source import Chunk
from slml.runtime.batch import Scored
out = Output(sys.argv[1], fmt="parquet", keep=())
out.prepare({"job": 1}, overwrite=False)
out.load_writer(lists=False)
labels = np.array(["setosa", "virginica", "versicolor"] * 2)
scored = Scored(list(range(6)), [], array=(labels.dtype.str, [6], labels.tobytes()))
out.write(Chunk(0, 0, ("a",), [], True, csv="", size=6), scored, kept={}, seconds=0)
print("pandas" in sys.modules)
"""


def test_predictions_sent_as_an_array_are_written_without_importing_pandas(
    tmp_path: Path,
) -> None:
    """pyarrow imports pandas on its first ``pa.array`` (about 0.2 s of the parent's CPU,
    with pandas installed, as here); arrays of predictions go to Arrow without it."""
    done = subprocess.run([sys.executable, "-c", WRITE_ARRAY, str(tmp_path / "out")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    table = pq.read_table(tmp_path / "out" / "part-00000.parquet")
    assert table.column("prediction").to_pylist() == ["setosa", "virginica", "versicolor"] * 2
    assert table.column("row").to_pylist() == list(range(6))
