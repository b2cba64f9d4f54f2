"""Progress lines for long work (conversion, generation): rate and ETA, throttled, to stderr."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, every_s: float = 2.0, stream=None):
        """``stream``: where the lines go; by default whatever sys.stderr is when one is printed (a caller may have
        replaced it since this module was imported, and a stream captured then may be closed by now)."""
        self.label, self.total, self.every_s, self.stream = label, total, every_s, stream
        self.start = self.last = time.monotonic()
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            self._print(now)

    def _print(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        print(f"{self.label}: {self.done}/{self.total} ({pct:.1f}%), {rate:.0f}/s, eta {eta:.0f}s",
              file=self.stream or sys.stderr, flush=True)
