"""The ``slml`` command line: parse, call ``slml.api``, render. Nothing else lives here.

Every SlmlError becomes one message on stderr and exit code 2; a traceback only with
``--debug``. ``--json`` prints results as JSON on stdout for scripts.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.exceptions import Abort as TyperAbort
from typer.exceptions import Exit as TyperExit
from typer.exceptions import TyperException

from slml import __version__
from slml.cli import render as render
from slml.cli.failures import translate, with_disk_hint
from slml.cli.reporter import RichReporter
from slml.errors import SlmlError, exit_code

app = typer.Typer(
    name="slml",
    help=(
        "Serve any trained model on serverless infrastructure, from one config.\n\n"
        "Typical flow: `slml save model.joblib` → `slml init artifacts/model` → "
        "`slml preview` → `slml deploy` → `slml invoke '{\"instances\": [[...]]}'`. "
        "The provider comes from slml.yaml or --provider (local, aws, sagemaker, gcp, azure)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

T = TypeVar("T")
out = Console(soft_wrap=not sys.stdout.isatty())  # piped output: whole lines, never wrapped
err = Console(stderr=True, soft_wrap=True)  # messages stay whole for grep
_state: dict[str, Any] = {"debug": False, "provider": None}

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path to slml.yaml (default: ./slml.yaml)."),
]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", "-p", help="local, aws, sagemaker, gcp or azure; "
                 "overrides `provider:` in slml.yaml."),
]
StageOpt = Annotated[
    str | None, typer.Option("--stage", "-s", help="Stage (dev, prod, ...): a separate "
                             "deployment of the same project. Default: `stage:` or dev.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON for scripts.")]


def _version(value: bool) -> None:
    if value:
        out.print(f"slml {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    _state["debug"] = debug


def _run(action: Callable[[RichReporter], T], *, json_mode: bool) -> T:
    """Run ``action`` with a progress reporter on stderr; close it on every path."""
    reporter = RichReporter(err, quiet=json_mode)
    try:
        result = action(reporter)
    except BaseException:
        reporter.abort()
        raise
    reporter.close()
    return result


def _opts(config: Path | None, provider: str | None, stage: str | None) -> dict[str, Any]:
    _state["provider"] = provider  # for the error mapping: which extra a missing SDK is in
    return {"config": config, "provider": provider, "stage": stage, "debug": _state["debug"]}


# Commands live in submodules; importing them registers them on ``app``.
from slml.cli import batch as _batch  # noqa: E402,F401
from slml.cli import capture as _capture  # noqa: E402,F401
from slml.cli import commands as _commands  # noqa: E402,F401
from slml.cli import metrics as _metrics  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps errors to messages and exit codes."""
    command = _plain_flags(typer.main.get_command(app))
    try:
        code = command.main(args=argv, prog_name="slml", standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into Exit(130), which is returned here
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except TyperExit as exc:
        sys.exit(exc.exit_code)
    except TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:  # pragma: no cover
            err.print(f"error: {escape(exc.format_message())}")
        sys.exit(2)
    except (KeyboardInterrupt, TyperAbort):
        err.print("[yellow]interrupted[/]: nothing was left half-done; the previous "
                  "deployment, if any, is unchanged")
        sys.exit(130)
    except SlmlError as exc:
        _report(with_disk_hint(exc))
    except Exception as exc:  # a full disk, a missing extra, or else an slml bug
        mapped = translate(exc, provider=_state["provider"])
        if mapped is not None:
            _report(mapped)
        if _state["debug"]:
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}",
                  highlight=False)
        err.print("  [dim]rerun with --debug for the traceback, and please report it[/]")
        sys.exit(1)
    sys.exit(0)


def _plain_flags(command: Any) -> Any:
    """``command`` with no type shown after boolean flags in ``--help`` (typer renders
    ``--json <bool>``, which reads as if the flag took a value)."""
    ctx = command.context_class(command)  # typer bundles its own click: no isinstance
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False):
            param.display_type_rich = lambda ctx: None  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)
    return command


def _report(exc: SlmlError) -> None:
    """Print an SlmlError as one message and a hint, and exit with its code."""
    if _state["debug"]:
        traceback.print_exc()
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    if exc.hint:
        err.print(f"  [dim]hint:[/] {escape(exc.hint)}", highlight=False)
    sys.exit(exit_code(exc))
