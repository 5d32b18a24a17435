"""Progress: a tqdm bar on a terminal; elsewhere a log line every `every_s` seconds and one at the end."""

import logging
import sys

from collapse import progress
from collapse.progress import Progress


def test_log_lines_when_not_a_terminal(monkeypatch, caplog):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    clock = iter([0.0, 0.0, 10.0, 31.0, 40.0, 45.0])  # t0, last, then one reading per update
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="collapse"), Progress(4, "train", "steps", every_s=30.0) as p:
        assert p.bar is None
        p.update(1, loss=2.5)  # 10 s: too early
        p.update(1, loss=2.25)  # 31 s: a line
        p.update(1)  # 40 s: 9 s after the last line
        p.update(1, loss=2.0)  # done: a line whatever the time
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["train 2/4 steps (31s) loss=2.25", "train 4/4 steps (45s) loss=2"]
    assert p.done == 4


def test_a_bar_on_a_terminal(monkeypatch, caplog):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with caplog.at_level(logging.INFO, logger="collapse"), Progress(3, "sample", "batches") as p:
        p.update(2, loss=1.23456)
        assert p.bar.n == 2 and p.bar.total == 3 and p.bar.postfix == "loss=1.235"
    assert p.bar.disable  # closed on leaving the block
    assert not caplog.records  # no log lines beside the bar
