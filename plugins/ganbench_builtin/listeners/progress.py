"""Progress bars for runs, drawn from run events (a listener plugin).

Disable with ``--no-plugin progress`` or ``GANBENCH_DISABLE_PLUGINS=progress``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tqdm.auto import tqdm

from ganbench import hookimpl

_UNIT = {"seconds": ("s", "seconds"), "images": ("img", "kimg"), "steps": ("step", "step")}


class ProgressBars:
    """One tqdm bar per run, advanced in the budget's own unit."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    @hookimpl
    def ganbench_run_started(self, run) -> None:
        unit, _ = _UNIT[run.budget_kind]
        total = run.budget_total / 1000 if run.budget_kind == "images" else run.budget_total
        self.bars[run.run_id] = tqdm(
            total=round(total, 3), desc=run.config.pair + f" s{run.config.seed}",
            unit="kimg" if run.budget_kind == "images" else unit, leave=True, dynamic_ncols=True, disable=None,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.4g}/{total:.4g} {unit} [{elapsed}<{remaining}]{postfix}",
        )

    @hookimpl
    def ganbench_step_logged(self, run, record: Mapping[str, float]) -> None:
        bar = self.bars.get(run.run_id)
        if bar is None:
            return
        done = {"seconds": record["seconds"], "images": record["kimg"], "steps": record["step"]}[run.budget_kind]
        bar.update(max(0.0, round(min(done, bar.total) - bar.n, 3)))
        losses = {k: f"{v:.3g}" for k, v in record.items() if k.startswith("loss")}
        bar.set_postfix(losses, refresh=False)

    @hookimpl
    def ganbench_run_finished(self, run, record) -> None:
        bar = self.bars.pop(run.run_id, None)
        if bar is not None:
            bar.set_postfix_str(record.status)
            bar.close()


bars = ProgressBars()
