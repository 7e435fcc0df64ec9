"""The command line's view of a job: a tqdm bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from tqdm import tqdm

from spikelens.pipelines.jobs import Job

#: seconds between progress lines when stderr is not a terminal (logs, CI, pipes)
LINE_EVERY_S = 3.0
#: a bar on a terminal appears once the work has run this long
SHOW_AFTER_S = 0.5


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines (for logs and pipes), and
    never writes the same line twice in a row (a job whose last update already printed its final state
    would otherwise print it again at the end)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last = ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text and text != self.last:
            self.out.write(text + "\n")
            self.last = text

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def cli_job(desc: str, unit: str = "it", quiet: bool = False, total: int | None = None) -> Iterator[Job]:
    """A :class:`Job` rendered on stderr while the block runs."""
    if quiet:
        yield Job()
        return
    tty = sys.stderr.isatty()
    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit == "ev",
        file=sys.stderr if tty else _Lines(sys.stderr),
        mininterval=0.1 if tty else LINE_EVERY_S,
        # nothing until the work has run a moment: a command that fails (or ends) at once prints no
        # progress before its error line, and a log gets no "0 done" line followed by the same at close
        delay=SHOW_AFTER_S if tty else LINE_EVERY_S,
        dynamic_ncols=tty,
        ascii=not tty,
    )

    def show(done: int, total: int | None, message: str) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.update(done - bar.n)

    try:
        yield Job(show)
    except BaseException:
        bar.disable = True  # the error line is what matters: no progress line after (or before) it
        bar.close()
        raise
    bar.delay = 0  # finished: its final state is shown once, even if it was too quick to show before
    if not tty:
        bar.refresh()  # the one final line; close() would write it again
        bar.disable = True
    bar.close()
