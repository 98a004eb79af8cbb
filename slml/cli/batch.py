"""``slml batch INPUT OUTPUT``: score a table with the model, resumably, with progress."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from slml.cli import ConfigOpt, JsonOpt, StageOpt, _run, app, err, out, render
from slml.cli.reporter import RichReporter


class _Bar:
    """Rows, rows/s and ETA on stderr (the ETA from the file position or row count)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._started = time.perf_counter()

    def __call__(self, rows: int, total: int | None, fraction: float | None) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("scoring"), BarColumn(), TextColumn("{task.fields[rows]} rows"),
                TextColumn("{task.fields[rate]} rows/s"), TimeRemainingColumn(),
                console=err, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("batch", total=1.0, rows="0", rate="-")
        done = rows / total if total else (fraction or 0.0)
        rate = rows / max(time.perf_counter() - self._started, 1e-9)
        assert self._task is not None
        self._progress.update(self._task, completed=done, rows=f"{rows:,}", rate=f"{rate:,.0f}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@app.command()
def batch(
    input_url: Annotated[str, typer.Argument(metavar="INPUT", help="A .csv (with a header), "
                         ".jsonl or .parquet file: a path or s3://, gs://, az:// URL.")],
    output_url: Annotated[str, typer.Argument(metavar="OUTPUT", help="A directory (or URL) "
                          "for the partitioned output, errors.jsonl and the resume state.")],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="The artifact "
                     "directory (default: `model:` in slml.yaml).")] = None,
    config: ConfigOpt = None,
    engine: Annotated[str, typer.Option(help="local: processes of the model's own "
                      "environment on this machine; ray: Ray actors; spark: Spark tasks "
                      "through mapInArrow (both on --address).")] = "local",
    workers: Annotated[int | None, typer.Option(help="Processes or actors (default: one "
                       "per CPU). Local processes after the first start only when the "
                       "running ones fall behind.")] = None,
    address: Annotated[str | None, typer.Option(help="A Ray cluster's address, or a Spark "
                       "master URL (default: a local Ray instance or Spark master).")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Rows per partition: the unit of "
                          "resume and of parallelism.")] = 10_000,
    output_format: Annotated[str, typer.Option("--format", help="parquet, csv or "
                             "jsonl.")] = "parquet",
    input_format: Annotated[str | None, typer.Option(help="csv, jsonl or parquet "
                            "(default: from INPUT's name).")] = None,
    keep: Annotated[list[str] | None, typer.Option("--keep", help="An input column to copy "
                    "to the output beside the row number (repeatable).")] = None,
    max_errors: Annotated[int | None, typer.Option(help="Stop once more rows than this "
                          "failed (default: never stop; every failure is in "
                          "errors.jsonl).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT when it holds another "
                         "job's output.")] = False,
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="gcp: run as a "
                        "Cloud Run Job with the endpoint's image (gs:// INPUT and OUTPUT); "
                        "sagemaker: a Batch Transform job with the endpoint's model (s3:// "
                        "INPUT and OUTPUT, CSV or JSON Lines); default: score here with "
                        "--engine.")] = None,
    stage: StageOpt = None,
    tasks: Annotated[int, typer.Option(help="--provider gcp: tasks of the job (partitions "
                     "are shared among them).")] = 10,
    parallelism: Annotated[int, typer.Option(help="--provider gcp: tasks at once (0: as "
                           "many as Cloud Run allows).")] = 0,
    instance_type: Annotated[str, typer.Option(help="--provider sagemaker: the job's "
                             "instance type.")] = "ml.m5.large",
    instances: Annotated[int, typer.Option(help="--provider sagemaker: instances of the "
                         "job.")] = 1,
    wait: Annotated[bool, typer.Option(help="--provider gcp or sagemaker: follow the job to "
                    "its end (sagemaker: and remove its S3 grant then).")] = True,
    preview: Annotated[bool, typer.Option("--preview", help="--provider gcp or sagemaker: "
                       "show the job's plan and change nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Score every row of INPUT with the model; write predictions to OUTPUT.

    Rows are validated as the endpoint validates them; a row that fails goes to
    OUTPUT/errors.jsonl with its row number and the run goes on. Rerun the same command
    after an interruption: partitions already written are skipped. Exit code 0 when every
    row was scored, 1 when some rows failed, 2 when the job could not run or stopped.
    """
    from slml.batch import BatchError, BatchOptions, run_batch

    options = BatchOptions(
        engine=engine, workers=workers, chunk_rows=chunk_rows, output_format=output_format,
        input_format=input_format, keep=tuple(keep or ()), max_errors=max_errors,
        overwrite=overwrite, address=address,
    )  # fmt: skip
    if provider == "sagemaker":
        _transform(input_url, output_url, config=config, stage=stage, preview=preview,
                   input_format=input_format, instance_type=instance_type,
                   instances=instances, wait=wait, json_out=json_out)
        return
    if provider is not None and provider != "local":
        _cloud(input_url, output_url, options, config=config, provider=provider, stage=stage,
               tasks=tasks, parallelism=parallelism, preview=preview, wait=wait,
               json_out=json_out)
        return
    if preview:
        raise BatchError("--preview is for a cloud batch job (--provider gcp or sagemaker)",
                         hint="a local run changes nothing but OUTPUT; just run it")
    model_dir, project_dir = _model(model, config)
    bar = _Bar(enabled=not json_out and err.is_terminal)
    build_dir = project_dir / ".slml" / "builds" / "batch"
    try:
        summary = _run(lambda r: run_batch(model_dir, input_url, output_url, options,
                                           build_dir=build_dir, reporter=r, progress=bar),
                       json_mode=json_out)
    finally:
        bar.stop()
    if json_out:
        render.print_json(out, {**render.to_data(summary),
                                "rows_per_second": round(summary.rows_per_second, 1)})
    else:
        _print(summary)
    if summary.stopped:
        raise BatchError(f"stopped: {summary.stopped} (see {summary.errors_file})",
                         hint="fix the input or raise --max-errors, then rerun: written "
                              "partitions are kept")
    _exit(1 if summary.errors else 0)


def _exit(code: int) -> None:
    """End the run with ``code``. The ``slml`` console script ends right here: every file
    is written and closed and the output flushed, so the interpreter's teardown (the
    modules of pyarrow, pandas and the CLI: about 0.2 s) would only keep the shell
    waiting. Called from within another program, it exits (1) or returns (0) as usual."""
    if Path(sys.argv[0]).name == "slml":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        sys.exit(code)


def _cloud(input_url: str, output_url: str, options: object, *, config: Path | None,
           provider: str, stage: str | None, tasks: int, parallelism: int, preview: bool,
           wait: bool, json_out: bool) -> None:
    from slml.api import open_session
    from slml.batch import BatchOptions
    from slml.batch import cloud as cloud_batch

    assert isinstance(options, BatchOptions)
    session = open_session(config, provider=provider, stage=stage)
    job = cloud_batch.cloud_job(session, input_url, output_url, options, tasks=tasks,
                                parallelism=parallelism, for_preview=preview)
    if preview:
        plan = cloud_batch.preview(job, session)
        render.print_json(out, plan) if json_out else render.plan(out, plan)
        return
    def start_and_follow(reporter: RichReporter) -> dict[str, object]:
        outputs = dict(cloud_batch.run(job, session))
        if wait:
            from slml.batch.cloudrun_wait import ExecutionWatcher

            watcher = ExecutionWatcher(project=str(outputs["project"]),
                                       region=str(outputs["region"]),
                                       job=str(outputs["job_name"]))
            reporter.step(f"following Cloud Run Job {outputs['job_name']}")
            state = watcher.wait(watcher.latest(), on_status=reporter.detail)
            outputs.update(execution=state.name, succeeded=state.succeeded, tasks=state.tasks)
        return outputs

    outputs = _run(start_and_follow, json_mode=json_out)
    if json_out:
        render.print_json(out, outputs)
        return
    verb = "finished" if wait else "started"
    out.print(f"{verb} Cloud Run Job {escape(str(outputs.get('job_name')))}: "
              f"{tasks} task(s) scoring {escape(input_url)} into {escape(output_url)}")


def _transform(input_url: str, output_url: str, *, config: Path | None, stage: str | None,
               preview: bool, input_format: str | None, instance_type: str, instances: int,
               wait: bool, json_out: bool) -> None:
    from slml.api import open_session
    from slml.batch import transform

    session = open_session(config, provider="sagemaker", stage=stage)
    spec = transform.transform_spec(session, input_url, output_url, input_format=input_format,
                                    instance_type=instance_type, instance_count=instances,
                                    for_preview=preview)
    if preview:
        plan = transform.preview(spec, session.ctx.stage)
        render.print_json(out, plan) if json_out else render.plan(out, plan)
        return

    def start_and_wait(reporter: RichReporter) -> dict[str, object]:
        reporter.step(f"Batch Transform of {input_url} with endpoint {spec.endpoint}'s model")
        runner = transform.TransformRunner(spec, on_status=reporter.detail)
        _, role = runner.start()
        if not wait:
            return {"job_name": spec.job, "status": "InProgress", "output": spec.output_url}
        try:
            return runner.wait(role)
        except KeyboardInterrupt:
            raise transform.BatchError(
                f"stopped waiting: job {spec.job} goes on in SageMaker",
                hint="its S3 grant is removed by the next `slml batch --provider "
                     "sagemaker` once the job has ended",
            ) from None

    result = _run(start_and_wait, json_mode=json_out)
    if json_out:
        render.print_json(out, result)
        return
    verb = "finished" if result["status"] == "Completed" else "started"
    out.print(f"{verb} Batch Transform job {escape(spec.job)}: {escape(input_url)} → "
              f"{escape(spec.output_url)} (one <object>.out per input object, a line per "
              "row)", highlight=False)


def _model(model: Path | None, config: Path | None) -> tuple[Path, Path]:
    """The artifact directory and the project directory (for the build cache)."""
    if model is not None:
        return model, Path.cwd()
    from slml.api import open_session

    session = open_session(config, need_model=True)
    return Path(session.ctx.config.model), session.ctx.state.root


def _print(summary: object) -> None:
    from slml.batch import BatchSummary

    assert isinstance(summary, BatchSummary)
    skipped = f", {summary.skipped} already written" if summary.skipped else ""
    out.print(
        f"[bold]{summary.rows:,}[/] rows: {summary.predictions:,} predictions, "
        f"[{'red' if summary.errors else 'green'}]{summary.errors:,} failed[/] "
        f"({summary.partitions} partitions{skipped}; {summary.seconds:.1f} s, "
        f"{summary.rows_per_second:,.0f} rows/s on {summary.workers} {summary.engine} "
        "worker(s))", highlight=False,
    )
    out.print(f"  output: {escape(summary.output)}", highlight=False)
    if summary.errors:
        out.print(f"  errors: {escape(summary.errors_file)}", highlight=False)
