"""Rich progress bars for long work (embedding, training, scoring).

Bars nest: an inner bar (e.g. embedding, started lazily inside training) joins the live display
of the outer one instead of opening a second live display, which rich forbids.
They show on a terminal only; ALRUN_PROGRESS=0 turns them off there too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_live: Progress | None = None


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n=1)`; bars are transient so the log stays readable."""
    global _live
    outer = _live is None
    if outer:
        _live = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),  # stdout stays the commands' output (tables, JSONL)
            # in logs and CI (no terminal) a bar is only noise
            disable=os.environ.get("ALRUN_PROGRESS", "1") == "0" or not sys.stderr.isatty(),
        )
        _live.start()
    bar = _live
    assert bar is not None  # started above, or by the enclosing bar
    task = bar.add_task(description, total=total)

    def advance(n: int = 1) -> None:
        bar.advance(task, n)

    try:
        yield advance
    finally:
        bar.remove_task(task)
        if outer:
            bar.stop()
            _live = None
