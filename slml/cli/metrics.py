"""``slml metrics``: requests, error rate, p50/p99 latency and rows per request of each
live version (local: each server's /metrics; clouds: their monitoring over --window,
slml/metrics)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from slml.cli import ConfigOpt, JsonOpt, ProviderOpt, StageOpt, _opts, app, out, render


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@app.command()
def metrics(
    window: Annotated[int, typer.Option("--window", min=60, max=1_209_600,
                                        help="Seconds of history on clouds (CloudWatch, "
                                        "Cloud Monitoring, Azure Monitor); "
                                        "local figures are since each server started.")] = 3600,
    config: ConfigOpt = None, provider: ProviderOpt = None, stage: StageOpt = None,
    json_out: JsonOpt = False,
) -> None:  # fmt: skip
    """Print a summary per live version: requests, error rate, p50/p99 latency, batch size."""
    from slml import api
    from slml.metrics import live_metrics

    session = api.open_session(**_opts(config, provider, stage))
    found = live_metrics(session.ctx, window_s=window)
    if json_out:
        render.print_json(out, [m.to_dict() for m in found])
        return
    if not found:
        out.print("no metrics yet: no live version has answered a prediction request")
        return
    table = Table("version", "requests", "error rate", "p50 ms", "p99 ms", "rows/request",
                  "errors by code")  # fmt: skip
    for m in found:
        codes = ", ".join(f"{c} {n}" for c, n in (m.errors_by_code or {}).items()) or "-"
        rate = "-" if m.error_rate is None else f"{m.error_rate * 100:.2f}%"
        table.add_row(m.version, str(m.requests), rate, _fmt(m.p50_ms, ".1f"),
                      _fmt(m.p99_ms, ".1f"), _fmt(m.batch_rows, ".1f"), codes)  # fmt: skip
    out.print(table)
