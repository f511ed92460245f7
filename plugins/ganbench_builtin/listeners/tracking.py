"""What every experiment-tracker listener shares (TensorBoard, MLflow, W&B): when to log, what, and how to fail.

A tracker acts only for runs whose ``--log-to`` (suite key ``log_to``) names
it. For such a run it logs, through a small :class:`Backend`:

- the resolved run config, flattened (``evaluation.extractor``), as hyperparameters;
- every loss and diagnostic of each logging window against the step, with
  ``kimg`` (and budget fraction) logged beside it as series of their own;
- every score of each evaluation, under ``score/<key>``;
- each sample grid (``samples/*.png``) as an image, once, when it appears;
- at the end, the final scores under ``final/<key>`` and the status.

One tracker run per ganbench run, named by the run id. Resuming must neither
open a second tracker run nor log a point twice: the tracker's own run id and
the last step, evaluation and images it logged are kept in the run directory
(``trackers.json``), and a resumed run continues that tracker run and skips
what was already sent (the rows the loop replays after the checkpoint).

A tracker is a convenience beside the results on disk, so it may never cost a
run: a missing library (an extra not installed), an unreachable server or any
error inside a tracker becomes one warning naming the tracker, and that
tracker is switched off for the rest of the run.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganbench import hookimpl
from ganbench import read_json, write_json

STATE_FILE = "trackers.json"
#: Row keys that locate a logging window rather than measure the training.
AXES = ("step", "kimg", "seconds", "fraction")


class Backend:
    """One open tracker run; subclasses talk to one library. Every method may raise: the listener contains it."""

    #: What this backend calls its own run, kept so that a resumed ganbench run continues it (None: not needed).
    run_ref: str | None = None

    def params(self, params: Mapping[str, str]) -> None:
        raise NotImplementedError

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        raise NotImplementedError

    def image(self, tag: str, path: Path, step: int) -> None:
        raise NotImplementedError

    def finish(self, status: str, final: Mapping[str, float], step: int) -> None:
        raise NotImplementedError


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested run config as flat string hyperparameters: ``{'evaluation': {'extractor': x}}`` -> ``evaluation.extractor``."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def image_array(path: Path) -> Any:
    """A PNG as an H x W x 3 uint8 array (greyscale grids repeated), the form every tracker takes."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


class TrackerListener:
    """A listener plugin that mirrors run events into one tracker; see the module docstring.

    Subclasses set ``name`` (the entry-point name ``--log-to`` uses), ``extra``
    (the pip extra that installs the library) and implement :meth:`open`.
    """

    name = ""
    #: The plugin API these built-ins target (the entry point names an instance of this class).
    GANBENCH_API_VERSION = 1
    extra = ""

    def __init__(self) -> None:
        self.open_runs: dict[str, tuple[Backend, dict[str, Any]]] = {}

    def open(self, run: Any, state: dict[str, Any]) -> Backend:
        """Start the tracker run, or continue the one ``state['run_ref']`` names when it is set."""
        raise NotImplementedError

    # -- safety -------------------------------------------------------------

    def _fail(self, run: Any, what: str, exc: BaseException) -> None:
        self.open_runs.pop(run.run_id, None)
        if isinstance(exc, ImportError):
            why = f"its library is not installed ({exc}); install it with pip install 'ganbench[{self.extra}]'"
        else:
            why = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"tracker {self.name!r} {what} failed and is off for run {run.run_id}: {why.rstrip('. ')}. "
                      "The run goes on; its results on disk are complete.", stacklevel=2)

    def _save(self, run: Any, state: dict[str, Any]) -> None:
        path = Path(run.directory) / STATE_FILE
        everything = read_json(path)
        everything = everything if isinstance(everything, dict) else {}
        everything[self.name] = state
        write_json(path, everything)

    # -- run events ---------------------------------------------------------

    @hookimpl
    def ganbench_run_started(self, run) -> None:
        if self.name not in run.log_to:
            return
        saved = read_json(Path(run.directory) / STATE_FILE)
        state = saved.get(self.name) if isinstance(saved, dict) and not run.fresh else None
        state = dict(state) if isinstance(state, dict) else {"step": -1, "fraction": -1.0, "images": []}
        resuming = state.get("run_ref") is not None
        try:
            backend = self.open(run, state)
            state["run_ref"] = backend.run_ref
            if not resuming:
                backend.params(flat_params(run.config.as_dict()))
            self._save(run, state)
        except Exception as exc:  # noqa: BLE001 - a tracker never costs a run
            self._fail(run, "start", exc)
            return
        self.open_runs[run.run_id] = (backend, state)

    @hookimpl
    def ganbench_step_logged(self, run, record: Mapping[str, float]) -> None:
        values = {k: float(v) for k, v in record.items() if k not in ("step", "seconds")}
        self._send(run, "logging", values, int(record["step"]), "step", int(record["step"]))

    @hookimpl
    def ganbench_evaluation_done(self, run, scores: Mapping[str, Any]) -> None:
        values = {f"score/{k}": float(v) for k, v in scores.items() if k not in ("fraction", "step", "kimg")}
        self._send(run, "logging scores", values, int(scores["step"]), "fraction", float(scores["fraction"]))

    def _send(self, run: Any, what: str, values: dict[str, float], step: int, mark: str, where: float) -> None:
        """Log ``values`` at ``step`` unless ``where`` is not past the ``mark`` already sent (a replay after a resume)."""
        opened = self.open_runs.get(run.run_id)
        if opened is None:
            return
        backend, state = opened
        if where <= state[mark]:
            return
        try:
            backend.scalars(values, step)
            state[mark] = where
            self._new_images(run, backend, state, step)
            self._save(run, state)
        except Exception as exc:  # noqa: BLE001 - a tracker never costs a run
            self._fail(run, what, exc)

    @hookimpl
    def ganbench_run_finished(self, run, record) -> None:
        opened = self.open_runs.pop(run.run_id, None)
        if opened is None:
            return
        backend, state = opened
        step = max(int(record.steps), state["step"], 0)
        try:
            self._new_images(run, backend, state, step)
            backend.finish(record.status, {f"final/{k}": float(v) for k, v in record.scores.items()}, step)
            self._save(run, state)
        except Exception as exc:  # noqa: BLE001
            self.open_runs[run.run_id] = opened
            self._fail(run, "finishing", exc)

    def _new_images(self, run: Any, backend: Backend, state: dict[str, Any], step: int) -> None:
        """Log the sample grids that appeared since the last look (each grid once, even across resumes)."""
        for path in sorted((Path(run.directory) / "samples").glob("*.png")):
            if path.stem not in state["images"]:
                backend.image(f"samples/{path.stem}", path, step)
                state["images"].append(path.stem)
