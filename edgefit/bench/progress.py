"""Progress over a whole bench (every measurement of every model), with ETA, on stderr."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgefit.errors import one_line


class BenchProgress(Protocol):
    def start(self, total: int) -> None: ...

    def describe(self, text: str) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def grow(self, n: int) -> None:
        """The plan changed (a model was skipped: negative)."""
        ...

    def stop(self) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        return None

    def describe(self, text: str) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None

    def grow(self, n: int) -> None:
        return None

    def stop(self) -> None:
        return None


class RichProgress:
    """A rich bar on stderr: description, bar, done/total measurements, elapsed, ETA."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),  # model names come from files: never markup
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True, highlight=False, markup=False),
            transient=False,
        )
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("bench", total=total)

    def describe(self, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=text)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def grow(self, n: int) -> None:
        if self._task is not None:
            total = self._progress.tasks[0].total or 0
            self._progress.update(self._task, total=max(0, total + n))

    def stop(self) -> None:
        self._progress.stop()


class LineProgress:
    """Without a terminal (a log file, CI): one plain line per model on stderr, with the count and the time
    so far, instead of nothing for minutes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._total = 0
        self._done = 0
        self._t0 = time.monotonic()

    def start(self, total: int) -> None:
        self._total, self._done, self._t0 = total, 0, time.monotonic()

    def describe(self, text: str) -> None:
        stream = self._stream or sys.stderr
        elapsed = time.monotonic() - self._t0
        line = f"bench: {one_line(text)} ({self._done}/{self._total} measurements done, {elapsed:.0f} s)"
        print(line, file=stream, flush=True)

    def advance(self, n: int = 1) -> None:
        self._done += n

    def grow(self, n: int) -> None:
        self._total = max(0, self._total + n)

    def stop(self) -> None:
        stream = self._stream or sys.stderr
        elapsed = time.monotonic() - self._t0
        print(f"bench: {self._done}/{self._total} measurements done ({elapsed:.0f} s)", file=stream, flush=True)


def make_progress(enabled: bool) -> BenchProgress:
    """When asked for: the rich bar if stderr is a terminal, else one plain line per model. Otherwise nothing."""
    if not enabled:
        return NoProgress()
    if sys.stderr.isatty():
        return RichProgress()
    return LineProgress()
