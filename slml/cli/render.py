"""How results look: Rich tables for people, plain JSON for scripts (``--json``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slml.cost import CostEstimate, CostLine
from slml.providers.base import Bundle, DeployResult, Plan, SizeReport, Status
from slml.units import human


def to_data(value: Any) -> Any:
    """Dataclasses, paths and tuples as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(to_data(value), default=str))


human_bytes = human  # one size format (slml.units), kept under its old name here


def grid(
    console: Console,
    columns: tuple[str, ...],
    rows: list[tuple[str, ...]],
    *,
    title: str | None = None,
    right: tuple[str, ...] = (),
) -> None:
    """A table for a terminal; plain tab-separated rows when stdout is piped.

    Piped output never wraps inside a cell (grep and CI logs find whole names); a cell's
    own line breaks become ``; ``. On a terminal Rich sizes the table (``COLUMNS`` wins).
    """
    if not console.is_terminal:
        lines = [title] if title else []
        lines += ["\t".join(cell.replace("\n", "; ") for cell in row) for row in [columns, *rows]]
        console.file.write("".join(f"{line}\n" for line in lines))  # Rich would expand tabs
        return
    table = Table(title=title, show_header=True, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


def size_rows(size: SizeReport) -> list[tuple[str, str]]:
    rows = [("unzipped", human_bytes(size.unzipped))]
    if size.zipped is not None:
        rows.append(("zipped", human_bytes(size.zipped)))
    rows += [(part, human_bytes(value)) for part, value in size.parts.items()]
    rows += [(f"  {package}", human_bytes(value)) for package, value in size.largest[:10]]
    return rows


def bundle(console: Console, result: Bundle) -> None:
    console.print(f"[bold]Built[/] {result.provider} bundle at {escape(str(result.path))}")
    console.print(
        f"  python {result.python_version}, {result.platform}, lock {result.lock_hash[:12]}, "
        f"model {result.model_sha256[:12]}" + (" (dependencies reused)" if result.reused else "")
    )
    for note in result.notes:
        console.print(f"  [dim]{escape(note)}[/]")
    grid(console, ("part", "size"), size_rows(result.size), title="Bundle size", right=("size",))


def _value(value: Any) -> str:
    text = json.dumps(to_data(value), default=str) if not isinstance(value, str) else value
    return text if len(text) <= 70 else text[:67] + "..."


def plan(console: Console, result: Plan) -> None:
    titles = {
        "local": "Local plan",
        "offline": "Offline plan (Pulumi mocks; not compared with any live state)",
        "pulumi": "Pulumi preview",
    }
    console.print(f"[bold]{titles[result.kind]}[/] for {result.provider}, stage {result.stage}")
    for i, step in enumerate(result.steps, 1):
        console.print(f"  {i}. {escape(step)}")
    if result.resources:
        rows = [
            (res.op, res.type, res.name,
             "\n".join(f"{k}: {_value(v)}" for k, v in res.inputs.items()),
             ", ".join(res.unknowns))
            for res in result.resources
        ]  # fmt: skip
        columns = ("op", "type", "name", "inputs that matter", "known after deploy")
        grid(console, columns, rows)
        console.print(f"  {len(result.resources)} resources")
    if result.cost is not None:
        cost(console, result.cost)
    for note in result.notes:
        console.print(f"  [dim]{escape(note)}[/]")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def usd(value: float) -> str:
    """Dollars with cents; sub-cent amounts keep two significant digits."""
    if value == 0:
        return "$0.00"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.2g}"


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.4g}"


def _unit_price(line: CostLine) -> str:
    if line.per == 1e6:
        return f"${line.price:g} / 1M {line.unit}"
    digits = f"{line.price:.10f}".rstrip("0").rstrip(".")
    return f"${digits} / {line.unit}"


def cost(console: Console, estimate: CostEstimate) -> None:
    """The monthly cost estimate: one row per priced line, totals, what was assumed."""
    usage = estimate.usage
    console.print(
        f"[bold]Estimated monthly cost[/] of {escape(estimate.target)} in {estimate.region} "
        f"at {usage.requests_per_month:,} requests/month, "
        f"{estimate.billed_ms_per_request:g} ms billed per request"
    )
    rows = [
        (line.item, f"{_quantity(line.quantity)} {line.unit}", _unit_price(line),
         usd(line.usd), usd(line.usd_after_free))
        for line in estimate.lines
    ]  # fmt: skip
    rows.append(("total", "", "", usd(estimate.total_usd), usd(estimate.total_after_free_usd)))
    columns = ("item", "quantity", "unit price", "list price", "after monthly free tier")
    grid(console, columns, rows, right=("quantity", "list price", "after monthly free tier"))
    for name, total in estimate.alternatives.items():
        delta = total - estimate.total_usd
        sign = "-" if delta < 0 else "+"
        console.print(f"  on {name} instead: {usd(total)} at list price "
                      f"({sign}{usd(abs(delta))} a month; check its wheels with "
                      f"`slml build` and aws.architecture: {name})")  # fmt: skip
    console.print(f"  [dim]{escape(estimate.free_tier)}[/]")
    for line in (*estimate.assumptions, *(ln.note for ln in estimate.lines if ln.note)):
        console.print(f"  [dim]assumed: {escape(line)}[/]")
    sources = ", ".join(estimate.sources)
    console.print(f"  [dim]prices transcribed {estimate.prices_transcribed} from {sources}: "
                  f"{escape(estimate.prices_note)}[/]")  # fmt: skip


def deployed(console: Console, result: DeployResult) -> None:
    console.print(
        f"[bold green]Deployed[/] version {result.version} to {result.provider} "
        f"(stage {result.stage})"
    )
    console.print(f"  endpoint: [bold]{escape(result.url)}[/]")
    _traffic(console, result.traffic)
    for note in result.notes:
        console.print(f"  [dim]{escape(note)}[/]")


def status(console: Console, result: Status) -> None:
    colour = {"running": "green", "deployed": "green", "down": "red"}.get(result.state, "yellow")
    console.print(
        f"{result.provider}/{result.stage}: [{colour}]{result.state}[/]"
        + (f"  version {result.version}" if result.version is not None else "")
        + (f"  {escape(result.url)}" if result.url else "")
    )
    _traffic(console, result.traffic)
    for key, value in result.details.items():
        console.print(f"  {escape(str(key))}: {escape(_value(value))}")


def _traffic(console: Console, traffic: tuple[Any, ...]) -> None:
    """The live versions and their share, when there are several."""
    if len(traffic) > 1:
        shown = ", ".join(f"v{t.version} {t.percent:g}% {t.role}" for t in traffic)
        console.print(f"  traffic: {escape(shown)}")


def deployments(console: Console, records: list[dict[str, Any]]) -> None:
    if not records:
        console.print("no deployments recorded in this project")
        return
    keys = ("stage", "provider", "version", "url", "deployed_at", "deployed_by")
    rows = [tuple(str(rec.get(k, "")) for k in keys) for rec in records]
    grid(console, ("stage", "provider", "version", "url", "deployed", "by"), rows)


def predictions(console: Console, result: dict[str, Any]) -> None:
    """One line per prediction, prefixed by the model that made it."""
    name, version = escape(str(result.get("model", "model"))), escape(str(result.get("version")))
    console.print(f"[bold]{name}[/] version {version}")
    values = result.get("predictions")
    if not isinstance(values, list):
        console.print_json(json.dumps(result, default=str))
        return
    width = len(str(len(values)))
    for i, value in enumerate(values):
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        console.print(f"  [dim]row {i:>{width}} →[/] {escape(shown)}", highlight=False)


def history(console: Console, events: list[dict[str, Any]]) -> None:
    if not events:
        console.print("no history yet in this project")
        return
    keys = ("at", "event", "stage", "provider", "version", "by")
    rows = [
        (*(str(event.get(k, "")) for k in keys),
         _value(event.get("error") or event.get("reason") or event.get("url") or ""))
        for event in events
    ]  # fmt: skip
    grid(console, ("at", "event", "stage", "provider", "version", "by", "detail"), rows)
