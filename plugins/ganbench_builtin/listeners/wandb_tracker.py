"""wandb: log runs to Weights & Biases (``--log-to wandb``).

W&B's own settings apply: ``WANDB_MODE=offline`` writes the run under
``<run dir>/wandb/offline-run-*`` with no account and no login (upload it
later with ``wandb sync``); ``WANDB_PROJECT`` (default ``ganbench``) and
``WANDB_ENTITY`` pick where online runs go. Online without credentials, the
tracker is switched off with a warning rather than waiting for a login
prompt. Each ganbench run is one W&B run named by its run id, with an id
derived from its config hash so that a resumed run continues it. Needs
``pip install 'ganbench[wandb]'``. What is logged, and how resuming and
failures behave: :mod:`ganbench_builtin.listeners.tracking`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganbench_builtin.listeners.tracking import Backend, TrackerListener, image_array

DEFAULT_PROJECT = "ganbench"


class WandbRun(Backend):
    def __init__(self, directory: Path, name: str, run_ref: str, resuming: bool) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT, name=name, id=run_ref, dir=str(directory),
            resume="allow" if resuming else None, reinit="create_new",
            settings=wandb.Settings(console="off", silent=True),
        )
        self.run_ref = run_ref

    def params(self, params: Mapping[str, str]) -> None:
        self.run.config.update(dict(params), allow_val_change=True)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def image(self, tag: str, path: Path, step: int) -> None:
        self.run.log({tag: self.wandb.Image(image_array(path))}, step=step)

    def finish(self, status: str, final: Mapping[str, float], step: int) -> None:
        self.run.summary.update({**final, "status": status})
        self.run.finish(exit_code=0 if status == "completed" else 1)


def _offline() -> bool:
    return os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun", "disabled")


class WandbListener(TrackerListener):
    """Logs runs to Weights & Biases; WANDB_MODE=offline needs no login (with --log-to wandb)."""

    name = "wandb"
    extra = "wandb"

    def open(self, run: Any, state: dict[str, Any]) -> Backend:
        import wandb

        if not _offline() and not os.environ.get("WANDB_API_KEY") and not wandb.Api().api_key:
            raise RuntimeError("no W&B credentials for online logging; run `wandb login`, or set WANDB_MODE=offline "
                               "to log without an account")
        ref = state.get("run_ref") or run.config.config_hash[:32]
        return WandbRun(Path(run.directory), run.run_id, ref, resuming=state.get("run_ref") is not None)


listener = WandbListener()
