"""Progress of runs, drawn from run events (a listener plugin): bars on a terminal, plain lines elsewhere.

A progress bar redraws one line with carriage returns, which a CI log or a
pipe shows as nothing (tqdm turns itself off there) or as a smear. So the
choice is made per run from ``sys.stderr``: on a terminal, one tqdm bar per
run; anywhere else, plain lines, flushed at once, that a log keeps readable:
one when a run starts, one at each tenth of its budget (step, kimg, the
losses, images per second) and one when it ends, with its status.

A pseudo-terminal may report a size of 0 columns and 0 lines (some CI
runners, ``docker exec`` and ``script`` without a size do), and tqdm then
draws nothing at all; the bar gets a fixed size instead.

Disable with ``--no-plugin progress`` or ``GANBENCH_DISABLE_PLUGINS=progress``.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from ganbench import hookimpl

_UNIT = {"seconds": "s", "images": "kimg", "steps": "step"}
_COUNTER = {"seconds": "seconds", "images": "kimg", "steps": "step"}
#: Size of the screen a bar assumes when the terminal reports none.
FALLBACK_COLUMNS, FALLBACK_LINES = 100, 24
#: Plain lines are printed at each tenth of the budget.
MARKS = 10


def _total(run: Any) -> float:
    """The budget in the unit progress is counted in (thousands of images for an image budget)."""
    return run.budget_total / 1000 if run.budget_kind == "images" else run.budget_total


def _done(run: Any, record: Mapping[str, float]) -> float:
    return float(record[_COUNTER[run.budget_kind]])


def _losses(record: Mapping[str, float]) -> dict[str, str]:
    return {k: f"{v:.3g}" for k, v in record.items() if k.startswith("loss")}


def _label(run: Any) -> str:
    return f"{run.config.pair} s{run.config.seed}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _size(stream: TextIO) -> tuple[int, int]:
    """The terminal's (columns, lines); 0 where it reports none."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        size = shutil.get_terminal_size((0, 0))
    return size.columns, size.lines


class _Bar:
    """One tqdm bar, advanced in the budget's own unit."""

    def __init__(self, run: Any, stream: TextIO) -> None:
        from tqdm.auto import tqdm

        columns, lines = _size(stream)
        # tqdm draws nothing when the terminal reports a zero size; then the bar gets a fixed one
        fixed = {} if columns and lines else {"ncols": columns or FALLBACK_COLUMNS, "nrows": lines or FALLBACK_LINES}
        self.bar = tqdm(
            total=round(_total(run), 3), desc=_label(run), unit=_UNIT[run.budget_kind], leave=True, file=stream,
            dynamic_ncols=not fixed, **fixed,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.4g}/{total:.4g} {unit} [{elapsed}<{remaining}]{postfix}",
        )
        self.run = run

    def step(self, record: Mapping[str, float]) -> None:
        done = _done(self.run, record)
        self.bar.update(max(0.0, round(min(done, self.bar.total) - self.bar.n, 3)))
        self.bar.set_postfix(_losses(record), refresh=False)

    def finish(self, record: Any) -> None:
        self.bar.set_postfix_str(record.status)
        self.bar.close()


class _Lines:
    """Plain lines for logs and pipes: start, each tenth of the budget, end."""

    def __init__(self, run: Any, stream: TextIO) -> None:
        self.run, self.stream = run, stream
        self.next_mark = 1
        self.last: Mapping[str, float] = {}
        total = _total(run)
        self._print(f"started: budget {total:g} {_UNIT[run.budget_kind]}, results in {run.directory}")

    def _print(self, text: str) -> None:
        print(f"[ganbench] {_label(self.run)}: {text}", file=self.stream, flush=True)

    def step(self, record: Mapping[str, float]) -> None:
        self.last = record
        tenth = math.floor(float(record.get("fraction", 0.0)) * MARKS + 1e-9)
        if tenth < self.next_mark or tenth >= MARKS:
            return  # the end of the budget is the line of run_finished
        self.next_mark = tenth + 1
        self._print(f"{tenth * 100 // MARKS:3d}% {_counters(record)}")

    def finish(self, record: Any) -> None:
        where = f" {_counters(self.last)}" if self.last else ""
        error = f" ({record.error})" if getattr(record, "error", None) and record.status != "completed" else ""
        self._print(f"{record.status}{where}{error}")


def _counters(record: Mapping[str, float]) -> str:
    """step, kimg, losses and images per second of training time, as one readable fragment."""
    parts = [f"step {int(record['step'])}", f"kimg {float(record['kimg']):.3f}"]
    parts += [f"{k} {v}" for k, v in _losses(record).items()]
    seconds = float(record.get("seconds", 0.0))
    if seconds > 0:
        parts.append(f"{float(record['kimg']) * 1000 / seconds:,.0f} img/s")
    return ", ".join(parts)


class Progress:
    """Progress of every run: a bar on a terminal, plain lines elsewhere (see the module docstring)."""

    #: The plugin API this listener targets.
    GANBENCH_API_VERSION = 1

    def __init__(self) -> None:
        self.shown: dict[str, _Bar | _Lines] = {}

    @hookimpl
    def ganbench_run_started(self, run) -> None:
        stream = sys.stderr
        self.shown[run.run_id] = (_Bar if _is_terminal(stream) else _Lines)(run, stream)

    @hookimpl
    def ganbench_step_logged(self, run, record: Mapping[str, float]) -> None:
        shown = self.shown.get(run.run_id)
        if shown is not None:
            shown.step(record)

    @hookimpl
    def ganbench_run_finished(self, run, record) -> None:
        shown = self.shown.pop(run.run_id, None)
        if shown is not None:
            shown.finish(record)


bars = Progress()
