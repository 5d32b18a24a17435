"""Progress bars on a terminal, periodic log lines elsewhere (cluster logs stay readable)."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("collapse")


class Progress:
    """`update(n, **stats)` advances by n; a tqdm bar on a TTY, else one log line per `every_s` seconds."""

    def __init__(self, total: int, desc: str, unit: str = "it", every_s: float = 30.0):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.done, self.t0, self.last = 0, time.perf_counter(), time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def update(self, n: int, **stats: float) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if stats:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items()}, refresh=False)
            return
        now = time.perf_counter()
        if now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            extra = " ".join(f"{k}={v:.4g}" for k, v in stats.items())
            log.info("%s %d/%d %s (%.0fs) %s", self.desc, self.done, self.total, self.unit, now - self.t0, extra)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
