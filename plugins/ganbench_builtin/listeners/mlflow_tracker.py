"""mlflow: log runs to MLflow (``--log-to mlflow``).

The tracking server is ``$MLFLOW_TRACKING_URI`` when set, otherwise a local
file store, ``mlruns/`` inside the results directory (next to ``runs/``);
``mlflow ui --backend-store-uri results/mlruns`` shows it. Runs go to the
experiment ``$MLFLOW_EXPERIMENT_NAME`` (default ``ganbench``) and are named by
run id. Needs ``pip install 'ganbench[mlflow]'``. What is logged, and how
resuming and failures behave: :mod:`ganbench_builtin.listeners.tracking`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganbench_builtin.listeners.tracking import Backend, TrackerListener, image_array

DEFAULT_EXPERIMENT = "ganbench"
FILE_STORE_ENV = "MLFLOW_ALLOW_FILE_STORE"
#: MLflow's own limit on one logged parameter value.
MAX_PARAM = 6000
#: ganbench status -> MLflow's terminal run status.
STATUS = {"completed": "FINISHED", "interrupted": "KILLED"}


def tracking_uri(results: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, else the file store ``<results>/mlruns``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (Path(results).resolve() / "mlruns").as_uri()


class MlflowRun(Backend):
    def __init__(self, uri: str, run_name: str, run_ref: str | None) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        if run_ref is None:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            run_ref = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        else:
            self.client.update_run(run_ref, status="RUNNING")
        self.run_ref = run_ref

    def params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_ref, params=[Param(k, v[:MAX_PARAM]) for k, v in params.items()])

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_ref, metrics=[Metric(_key(k), v, now, step) for k, v in values.items()])

    def image(self, tag: str, path: Path, step: int) -> None:
        self.client.log_image(self.run_ref, image_array(path), key=_key(tag), step=step)

    def finish(self, status: str, final: Mapping[str, float], step: int) -> None:
        if final:
            self.scalars(final, step)
        self.client.set_tag(self.run_ref, "ganbench.status", status)
        self.client.set_terminated(self.run_ref, status=STATUS.get(status, "FAILED"))


def _key(name: str) -> str:
    """A metric name MLflow accepts: letters, digits and ``_-./ `` only (``fid10k[lenet-x]`` -> ``fid10k_lenet-x_``)."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


class MlflowListener(TrackerListener):
    """Logs runs to MLflow: $MLFLOW_TRACKING_URI, else results/mlruns (with --log-to mlflow)."""

    name = "mlflow"
    extra = "mlflow"

    def open(self, run: Any, state: dict[str, Any]) -> Backend:
        results = Path(run.directory).parent.parent  # <results>/runs/<run id>
        uri = tracking_uri(results)
        if uri.startswith("file:"):  # MLflow 3 refuses a file store unless told it is wanted; here it is
            os.environ.setdefault(FILE_STORE_ENV, "true")
        return MlflowRun(uri, run.run_id, state.get("run_ref"))


listener = MlflowListener()
