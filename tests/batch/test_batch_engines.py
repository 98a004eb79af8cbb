"""The local engine's channel to its worker processes: two partitions in hand per
process, answers matched in order, the input read while the first process loads, and a
process that dies fails the run with its exit code and last words instead of leaving
it waiting."""

from __future__ import annotations

import fcntl
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from slml.batch import workers as local_workers
from slml.batch.engines import EngineError, EngineStartError, LocalEngine, Work, frame_bytes
from slml.runtime.batch import Scored

# a stand-in for slml.runtime.batch_worker: answers each frame's rows with [frame id, its pid],
# after reading the frame's CSV bytes and SLOW seconds; DIE_AFTER frames, it exits 3;
# it is ready after LOAD seconds
FAKE = '''
import json, os, sys, time
slow = float(os.environ.get("SLOW", "0"))
time.sleep(float(os.environ.get("LOAD", "0")))
first = os.environ.get("FIRST_MARK")  # processes after the first load for 60 s
if first:
    try:
        os.close(os.open(first, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(60)
die_after = int(os.environ.get("DIE_AFTER", "-1"))
print(json.dumps({"ready": True}), flush=True)
inp, seen = sys.stdin.buffer, 0
while line := inp.readline():
    job = json.loads(line)
    text = inp.read(job.get("csv_bytes", 0)).decode()
    if seen == die_after:
        print("worker: giving up", file=sys.stderr, flush=True)
        sys.exit(3)
    seen += 1
    time.sleep(slow)
    rows = text.count("\\n")
    print(json.dumps({"id": job["id"], "ok": rows, "predictions": [[job["id"], os.getpid()]] * rows,
                      "errors": [], "kept": {}}), flush=True)
'''


def python(tmp_path: Path) -> Path:
    """This interpreter without site-packages, where the real slml would win."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def fake_app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "slml" / "runtime").mkdir(parents=True)
    (app / "slml" / "__init__.py").write_text("")
    (app / "slml" / "runtime" / "__init__.py").write_text("")
    (app / "slml" / "runtime" / "batch_worker.py").write_text(textwrap.dedent(FAKE))
    return app


def work(n: int, rows: int = 3) -> list[Work]:
    return [Work(k, [], True, csv="1,2\n" * rows, width=2, features=(0, 1)) for k in range(n)]


def engine_of(tmp_path: Path, workers: int, app: Path | None = None) -> LocalEngine:
    return LocalEngine(python=python(tmp_path), app_dir=app or fake_app(tmp_path),
                       model_dir=tmp_path, workers=workers)


def run(engine: LocalEngine, items: Iterable[Work]) -> list[tuple[Work, Scored]]:
    """Every result of ``items`` on ``engine``, which is closed after."""
    try:
        return list(engine.map(items))
    finally:
        engine.close()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_partition_comes_back_with_its_own_answer(tmp_path: Path, workers: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOW", "0.05")  # 25 frames last long enough for the late workers
    results = run(engine_of(tmp_path, workers), work(25, rows=4))
    assert sorted(item.key for item, _ in results) == list(range(25))
    for item, scored in results:
        assert scored.ok == [0, 1, 2, 3] and [p[0] for p in scored.predictions] == [item.key] * 4
    pids = {scored.predictions[0][1] for _, scored in results}
    assert len(pids) == workers  # the processes started after the first took work too


def test_a_worker_that_dies_fails_the_run_with_its_code_and_last_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIE_AFTER", "2")
    with pytest.raises(EngineError, match=r"exited \(code 3\): worker: giving up"):
        run(engine_of(tmp_path, 1), work(10))


def test_a_worker_that_cannot_start_is_an_engine_start_error(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, 2, app=tmp_path / "nothing")
    with pytest.raises(EngineStartError, match=r"did not load .* exited"):
        run(engine, work(3))
    assert engine.started == 1


def test_the_input_is_read_while_the_first_process_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partitions are read (here: handed out) during the load, up to the read-ahead's
    bytes; the rest only as the process takes them."""
    monkeypatch.setenv("LOAD", "1.0")
    monkeypatch.setattr(local_workers, "READ_AHEAD_BYTES", 5 * len("1,2\n" * 3))
    read: list[float] = []

    def timed(items: list[Work]) -> Iterator[Work]:
        for item in items:
            read.append(time.monotonic())
            yield item

    engine = engine_of(tmp_path, 1)
    began = time.monotonic()
    results = run(engine, timed(work(12)))
    assert len(results) == 12
    assert [t - began < 0.5 for t in read] == [True] * 5 + [False] * 7
    assert engine.pace.load is not None and engine.pace.load >= 1.0


def test_csv_frames_carry_their_text_as_bytes_after_the_header() -> None:
    header, body = frame_bytes(Work(7, [], True, csv="é,1\n", width=2, features=(0, 1)))
    assert body == "é,1\n".encode() and b'"csv_bytes": 5' in header and b"csv" not in body
    header, body = frame_bytes(Work(8, [[1, 2]], False))
    assert body == b"" and header.endswith(b"\n") and b'"rows": [[1, 2]]' in header


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="Linux pipes only")
def test_the_pipes_take_a_partition_of_a_megabyte_at_once(tmp_path: Path) -> None:
    if int(Path("/proc/sys/fs/pipe-max-size").read_text()) < local_workers.PIPE_BYTES:
        pytest.skip("this machine caps pipes below a megabyte")
    engine = engine_of(tmp_path, 1)
    try:
        proc = engine._all[0].proc
        assert proc.stdin is not None and proc.stdout is not None
        for pipe in (proc.stdin, proc.stdout):
            assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) >= local_workers.PIPE_BYTES
    finally:
        engine.close()


def test_with_nothing_to_score_the_model_load_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOAD", "30")
    started = time.monotonic()
    assert run(engine_of(tmp_path, 2), []) == []
    assert time.monotonic() - started < 5


def test_closing_does_not_wait_for_processes_still_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRST_MARK", str(tmp_path / "first"))
    monkeypatch.setenv("SLOW", "0.3")  # the first falls behind: a second one starts loading
    engine = engine_of(tmp_path, 3)
    results = list(engine.map(work(5)))
    assert engine.started >= 2  # the late ones still loading (for 60 s)
    started = time.monotonic()
    engine.close()
    assert len(results) == 5 and time.monotonic() - started < 5
    assert all(w.proc.poll() is not None for w in engine._all)


def test_a_worker_that_keeps_up_alone_is_the_only_one_started(tmp_path: Path) -> None:
    """The parent hands out partitions slower than one process scores them (here one
    every 20 ms, scored at once): no second process loads a model it could not use."""

    def slowly(items: list[Work]):
        for item in items:
            time.sleep(0.02)
            yield item

    engine = engine_of(tmp_path, 2)
    results = run(engine, slowly(work(30)))
    assert len(results) == 30 and engine.started == 1
