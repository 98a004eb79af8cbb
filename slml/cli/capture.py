"""``slml capture pull``: download captured requests (and answers) as JSONL or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slml.cli import ConfigOpt, ProviderOpt, StageOpt, _opts, app, err

capture_app = typer.Typer(
    help="Captured traffic (the `capture:` section of slml.yaml). "
    "Captured inputs may hold personal data.",
    no_args_is_help=True,
)
app.add_typer(capture_app, name="capture")


@capture_app.command()
def pull(
    output: Annotated[Path, typer.Argument(help="The file to write.")],
    since: Annotated[str | None, typer.Option("--since", help="Only records from this time "
                     "on: 30m, 2h, 7d, or an ISO time (UTC by default).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet (default: from "
                                     "OUTPUT's suffix, else jsonl).")] = "",
    config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
) -> None:  # fmt: skip
    """Download the captured records of the stage into OUTPUT."""
    from slml import api
    from slml.capture import sink_url
    from slml.capture.pull import parse_since, records, write
    from slml.errors import UsageError

    ctx = api.open_session(**_opts(config, provider, stage)).ctx
    local = ctx.state.stage_dir("local", ctx.stage) / "capture"
    url = sink_url(ctx.config, default=local if ctx.config.provider == "local" else None)
    if url is None:
        raise UsageError(
            "this stage captures nothing: slml.yaml has no capture section"
            + ("" if ctx.config.capture is None else " with a sink"),
            hint="add `capture: {sample: 0.1, sink: s3://bucket/prefix}` and deploy again",
        )
    chosen = fmt or ("parquet" if output.suffix == ".parquet" else "jsonl")
    n = write(records(url, since=parse_since(since)), output, fmt=chosen)
    err.print(f"{n} records from {url} written to {output} ({chosen})")
