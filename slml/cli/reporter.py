"""Progress on the terminal: a spinner for the running step, a tick when it is done."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.status import Status as Spinner


class RichReporter:
    """A ``Reporter`` for people. Quiet (``--json``) mode prints nothing."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self._spinner: Spinner | None = None
        self._current: str | None = None
        self._started = 0.0

    def _finish_current(self) -> None:
        if self._current is None:
            return
        elapsed = time.perf_counter() - self._started
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        self.console.print(f"[green]✓[/] {escape(self._current)} [dim]({elapsed:.1f}s)[/]")
        self._current = None

    def step(self, message: str) -> None:
        if self.quiet:
            return
        self._finish_current()
        self._current = message
        self._started = time.perf_counter()
        if self.console.is_terminal:
            self._spinner = self.console.status(escape(message))
            self._spinner.start()

    def detail(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"  [dim]{escape(message)}[/]", highlight=False)

    def warn(self, message: str) -> None:
        # warnings are shown even with --json (on stderr), they are about safety
        self.console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)

    def close(self) -> None:
        if not self.quiet:
            self._finish_current()
        elif self._spinner is not None:
            self._spinner.stop()

    def abort(self) -> None:
        """Stop the spinner without a tick (the step failed)."""
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        if self._current is not None and not self.quiet:
            self.console.print(f"[red]✗[/] {escape(self._current)}")
        self._current = None
