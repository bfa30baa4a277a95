"""Progress for long runs: a live bar with rate and ETA on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("wirestream.progress")


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.monotonic()
        self.tty = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        share = done / total if total else 1.0
        if self.tty:
            filled = int(self.width * share)
            bar = "#" * filled + "-" * (self.width - filled)
            end = "\n" if done >= total else ""
            self.stream.write(
                f"\r{self.label} [{bar}] {done}/{total} {rate:,.0f} stories/s ETA {eta:,.0f}s{end}"
            )
            self.stream.flush()
        else:
            log.info(
                "%s: %d/%d (%.0f%%), %.0f stories/s, ETA %.0fs",
                self.label,
                done,
                total,
                share * 100,
                rate,
                eta,
            )
