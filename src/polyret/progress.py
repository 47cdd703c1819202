"""Progress as plain text lines, for logs and pipes where a live progress bar shows nothing.

A rich progress bar on a stream that is not a terminal stays silent until it ends (80 s of silence in a job's log);
:class:`LineProgress` writes ``what: done/total (percent), rate, ETA`` at most every ``interval_s`` seconds instead,
and always once at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

PROGRESS_INTERVAL_S = 10.0


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _write_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LineProgress:
    """Counts ``done`` of ``total`` units and writes a line about every ``interval_s`` seconds and when done.

    ``clock`` and ``write`` are injectable so the lines can be checked without waiting.
    """

    def __init__(
        self,
        description: str,
        total: int,
        unit: str = "items",
        *,
        interval_s: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] = _write_stderr,
    ) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.interval_s, self._clock, self.write = interval_s, clock, write
        self.done = 0
        self._started = self._last_line = clock()

    def line(self) -> str:
        elapsed = self._clock() - self._started
        percent = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = f"{self.description}: {self.done}/{self.total} {self.unit}{percent}"
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            text += f", {rate:.1f} {self.unit}/s" if rate >= 1 else f", {60 * rate:.2f} {self.unit}/min"
            text += f", ETA {_duration((self.total - self.done) / rate)}" if self.done < self.total else ""
        return text + f", elapsed {_duration(elapsed)}"

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        now = self._clock()
        if self.done >= self.total or now - self._last_line >= self.interval_s:
            self._last_line = now
            self.write(self.line())
