"""Progress of long work: a bar on a terminal, and periodic one-line reports in logs.

When stderr is not a terminal (output redirected to a file, a batch job's log), a bar would
print nothing useful until the end; :class:`Progress` then writes one line every
``interval`` seconds (``OCCSYNTH_PROGRESS_INTERVAL``, default 30) with the count, the rate and
the time left, and a last line when the work ends.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

#: Seconds between two log lines when stderr is not a terminal.
DEFAULT_INTERVAL = 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def log_line(desc: str, done: int, total: int, unit: str, elapsed: float) -> str:
    """``samples 1200/20000 (6.0%), 58.1 sample/s, ETA 5m23s``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    pct = f" ({100.0 * done / total:.1f}%)" if total else ""
    eta = f", ETA {_duration((total - done) / rate)}" if rate > 0 and total > done else ""
    return f"{desc} {done}/{total}{pct}, {rate:.1f} {unit}/s{eta}"


class Progress:
    """Counts work done; shows a tqdm bar on a terminal, periodic lines otherwise.

    ``enabled=False`` shows nothing. ``stream`` and ``interval`` exist for tests.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self.stream = stream or sys.stderr
        if interval is None:
            interval = float(os.environ.get("OCCSYNTH_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
        self.interval = interval
        self.start = self.last = time.monotonic()
        self.bar: Any = None
        self.log = enabled and not _is_terminal(self.stream)
        if enabled and not self.log:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False, file=self.stream
            )

    def reset(self, total: int) -> None:
        """Set the total once it is known."""
        self.total = total
        if self.bar is not None:
            self.bar.reset(total=total)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.log:
            now = time.monotonic()
            if now - self.last >= self.interval:
                self.last = now
                self._write()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.log and self.done:
            self._write()
        self.log = False
        self.bar = None

    def _write(self) -> None:
        line = log_line(self.desc, self.done, self.total, self.unit, time.monotonic() - self.start)
        print(line, file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
