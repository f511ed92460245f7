"""tensorboard: log runs to TensorBoard event files in each run directory (``--log-to tensorboard``).

Events go to ``<run dir>/tensorboard/``, so ``tensorboard --logdir results/runs``
shows every run of a results directory side by side, named by run id. Needs
``pip install 'ganbench[tensorboard]'``. What is logged, and how resuming and
failures behave: :mod:`ganbench_builtin.listeners.tracking`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganbench_builtin.listeners.tracking import Backend, TrackerListener, image_array

SUBDIR = "tensorboard"


class TensorBoardRun(Backend):
    def __init__(self, directory: Path, fresh: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        # purge_step=0 on a fresh start hides the events of an earlier attempt from TensorBoard's readers
        self.writer = SummaryWriter(log_dir=str(directory), purge_step=0 if fresh else None)

    def params(self, params: Mapping[str, str]) -> None:
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(dict(params), {}):
            self.writer.file_writer.add_summary(summary)
        self.writer.flush()

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def image(self, tag: str, path: Path, step: int) -> None:
        self.writer.add_image(tag, image_array(path), step, dataformats="HWC")
        self.writer.flush()

    def finish(self, status: str, final: Mapping[str, float], step: int) -> None:
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.add_text("status", status, step)
        self.writer.close()


class TensorBoardListener(TrackerListener):
    """Logs runs to TensorBoard event files in each run directory (with --log-to tensorboard)."""

    name = "tensorboard"
    extra = "tensorboard"

    def open(self, run: Any, state: dict[str, Any]) -> Backend:
        backend = TensorBoardRun(Path(run.directory) / SUBDIR, fresh=bool(run.fresh))
        backend.run_ref = run.run_id
        return backend


listener = TensorBoardListener()
