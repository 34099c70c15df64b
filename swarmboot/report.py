"""Progress reporting: what swarmboot is doing, on stderr, in kind's manner.

Results go to stdout through the commands themselves; progress goes through a `Reporter`, so
the core can report without knowing about terminals and tests can record what was said.
"""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.markup import escape

__all__ = ["ConsoleReporter", "RecordingReporter", "Reporter"]


class Reporter(Protocol):
    def ok(self, text: str) -> None:
        """A step that finished: ` ✓ text`."""

    def failed(self, text: str) -> None:
        """A step that failed: ` ✗ text`."""

    def warn(self, text: str) -> None:
        """A risk the user should know of, shown even when quiet: ` ! text`."""

    def info(self, text: str) -> None:
        """A note worth reading, shown unless quiet."""

    def detail(self, text: str) -> None:
        """A note for -v only."""


class ConsoleReporter:
    def __init__(
        self, *, verbose: bool = False, quiet: bool = False, console: Console | None = None
    ) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self._console = console or Console(stderr=True, highlight=False, soft_wrap=True)

    def ok(self, text: str) -> None:
        if not self.quiet:
            self._console.print(f" [green]✓[/green] {escape(text)}")

    def failed(self, text: str) -> None:
        self._console.print(f" [red]✗[/red] {escape(text)}")

    def warn(self, text: str) -> None:
        self._console.print(f" [yellow]![/yellow] {escape(text)}")

    def info(self, text: str) -> None:
        if not self.quiet:
            self._console.print(f"   {escape(text)}")

    def detail(self, text: str) -> None:
        if self.verbose and not self.quiet:
            self._console.print(f"   [dim]{escape(text)}[/dim]")


class RecordingReporter:
    """Keeps what was reported, for tests."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def ok(self, text: str) -> None:
        self.lines.append(f"✓ {text}")

    def failed(self, text: str) -> None:
        self.lines.append(f"✗ {text}")

    def warn(self, text: str) -> None:
        self.lines.append(f"! {text}")

    def info(self, text: str) -> None:
        self.lines.append(text)

    def detail(self, text: str) -> None:
        self.lines.append(f"  {text}")
