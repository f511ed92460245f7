"""The ``ray`` executor: one Ray task per planned run, on this machine or a Ray cluster.

The driver plans and checks the runs exactly as ``local`` does, then:

1. joins the cluster at ``--ray-address``/``RAY_ADDRESS``, or starts Ray on this machine;
2. checks every node before anything trains: the plugins the runs need are
   installed there, and a probe file written from there into the results
   directory can be read back here (the directory is shared);
3. submits one task per run, requesting ``--cpus-per-run`` CPUs and
   ``--gpus-per-run`` GPUs, retried ``--max-retries`` times when its worker
   process or node dies (the retry resumes from the run's checkpoint);
4. prints one progress line per run from the run events the workers send
   through a Ray actor, and returns the records in plan order.

A worker rebuilds the registry from entry points and the modules given with
``--plugin-module`` (their absolute paths travel in the invocation, so a
plugin file under development need not be installed on the workers, only
reachable at the same path), loads the dataset once per
worker process (Ray reuses workers; the files in ``--data-dir`` serve every
worker of a node), and trains with the same code as ``local``, so the run
directories are ordinary ones. Ray is imported only when this executor runs.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ganbench import hookimpl
from ganbench import (
    RUN_FAILED as FAILED, Invocation, PlannedRun, Registry, RunRecord, UsageError, build_registry, check_writable,
    load_dataset, plan_runs as plan, train_planned,
)

INSTALL = ("The ray executor needs Ray, which is an optional extra: pip install 'ganbench[ray]' "
           "(or uv sync --extra ray), then run again. --executor local needs nothing.")
#: Seconds between progress lines of one run (status changes are always shown).
PROGRESS_EVERY = 5.0


def _ray() -> Any:
    # Under `uv run`, Ray would ship the working tree (virtual environment included) to every worker and start it
    # through `uv run` again; the workers of this machine and of a cluster use the interpreter they have. Ray reads
    # the switch when it is first imported.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL) from None
    return ray


def execute_on_ray(registry: Registry, inv: Invocation) -> list[RunRecord]:
    """Train every run of ``inv`` as a Ray task; see the module docstring."""
    return execute_many_on_ray(registry, [inv])[0]


def execute_many_on_ray(registry: Registry, invocations: list[Invocation]) -> list[list[RunRecord]]:
    """Train the runs of every invocation (a study's trials) as Ray tasks submitted together, so they train
    side by side as far as the cluster's resources go; one record list per invocation, in plan order.
    One cluster serves them all, so they must share their executor options (address, resources per run,
    retries): a study's trials do, as they come from one command; a caller mixing them is refused."""
    first = invocations[0]
    differing = sorted({str(inv.executor) for inv in invocations if inv.executor != first.executor})
    if differing:
        raise UsageError(f"The ray executor trains a batch of invocations on one cluster with one set of executor "
                         f"options; the first has {first.executor}, others {'; '.join(differing)}. Run those "
                         "separately.")
    for inv in invocations:
        plan(registry, inv, device_type="cpu")  # names, pairs and options are refused before Ray starts
        check_writable(inv.results)
    ray = _ray()
    started = _connect(ray, first)
    try:
        gpus = _gpus_per_run(ray, first)
        device_type = "cuda" if gpus > 0 else "cpu"
        jobs: list[tuple[Invocation, PlannedRun]] = []
        counts = []
        for inv in invocations:
            inv = replace(inv, device=device_type if inv.device == "auto" else inv.device)
            planned = plan(registry, inv, device_type=device_type)
            jobs += [(inv, run) for run in planned]
            counts.append(len(planned))
        checks: dict[tuple[Any, ...], tuple[Invocation, list[PlannedRun]]] = {}  # a study's trials share all this
        for inv, run in jobs:
            key = (inv.results, inv.dataset, inv.evaluation.metrics, inv.plugin_modules)
            checks.setdefault(key, (inv, []))[1].append(run)
        for inv, runs in checks.values():
            check_nodes(ray, registry, runs, inv)
        records = iter(_train(ray, registry, jobs, gpus))
        return [[next(records) for _ in range(count)] for count in counts]
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, inv: Invocation) -> bool:
    """Join the cluster, or start a local runtime; True when this call started Ray (and must stop it)."""
    if ray.is_initialized():
        return False
    address = inv.executor.address
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=True, configure_logging=False)
    except ConnectionError as exc:
        raise UsageError(f"Cannot join the Ray cluster at {address!r}: {exc}. Check --ray-address/RAY_ADDRESS, "
                         "or leave it unset to start Ray on this machine.") from None
    return True


def _gpus_per_run(ray: Any, inv: Invocation) -> float:
    requested = inv.executor.gpus_per_run
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    if requested is None:
        return 1.0 if has_gpus and inv.device != "cpu" else 0.0
    if requested > 0 and not has_gpus:
        raise UsageError(f"--gpus-per-run {requested:g} was asked for, but the Ray cluster has no GPUs. "
                         "Use --gpus-per-run 0 (train on CPUs) or join a cluster with GPU nodes.")
    return requested


# -- pre-flight checks --------------------------------------------------------


def _needed(registry: Registry, planned: list[PlannedRun], inv: Invocation) -> set[tuple[str, str, str]]:
    """(kind, name, distribution) of every plugin the runs use."""
    needed = set()
    for run in planned:
        needed.add(("model", run.model.name, registry.get("model", run.model.name).plugin.distribution))
        needed.add(("objective", run.objective.name, registry.get("objective", run.objective.name).plugin.distribution))
    dataset = inv.dataset.partition(":")[0]
    needed.add(("dataset", dataset, registry.get("dataset", dataset).plugin.distribution))
    for metric in inv.evaluation.metrics:
        needed.add(("metric", metric, registry.get("metric", metric).plugin.distribution))
    return needed


def _inspect_node(disabled: list[str], modules: tuple[str, ...], runs_dir: str, probe: str,
                  token: str) -> dict[str, Any]:
    """On one node: what the plugins there provide, and whether the results directory takes a file."""
    import socket

    registry = build_registry(disabled=disabled, modules=modules)
    report: dict[str, Any] = {"host": socket.gethostname(), "names": {k: sorted(t) for k, t in registry.specs.items()},
                              "write_error": None}
    try:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        (Path(runs_dir) / probe).write_text(token)
    except OSError as exc:
        report["write_error"] = str(exc.strerror or exc)
    return report


def check_nodes(ray: Any, registry: Registry, planned: list[PlannedRun], inv: Invocation) -> None:
    """Refuse to start when a node lacks a plugin the runs need, or cannot share the results directory."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    inspect = ray.remote(num_cpus=0)(_inspect_node)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    token = uuid.uuid4().hex
    runs_dir = str(inv.runs_dir.resolve())
    refs = {}
    for node in nodes:
        probe = f".ray-probe-{node['NodeID'][:12]}-{token[:8]}"
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        refs[probe] = (node, inspect.options(scheduling_strategy=strategy).remote(
            sorted(registry.disabled), inv.plugin_modules, runs_dir, probe, token))
    problems = []
    needed = _needed(registry, planned, inv)
    for probe, (node, ref) in refs.items():
        report = ray.get(ref)
        where = f"node {node.get('NodeManagerAddress')} ({report['host']})"
        for kind, name, dist in sorted(needed):
            if name not in report["names"].get(kind, []):
                problems.append(f"{where} lacks the {kind} {name!r}: install the distribution {dist} there")
        path = Path(runs_dir) / probe
        if report["write_error"]:
            problems.append(f"{where} cannot write to the results directory {runs_dir}: {report['write_error']}")
        elif not path.exists() or path.read_text() != token:
            problems.append(f"a file written by {where} into {runs_dir} is not visible here: the results "
                            "directory must be on a filesystem every node shares with this machine")
        path.unlink(missing_ok=True)
    if problems:
        raise UsageError("The Ray cluster cannot train these runs: " + "; ".join(problems) + ". "
                         "See docs/scaling.md.")


# -- training -------------------------------------------------------------------


class _Events:
    """A Ray actor between workers and the driver: workers put run events, the driver drains them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def put(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        out, self.events = self.events, []
        return out


class _Forwarder:
    """A listener registered in a worker's registry: sends this worker's run events to the driver."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def _send(self, run: Any, **fields: Any) -> None:
        self.events.put.remote({"run_id": run.run_id, "pid": os.getpid(), **fields})

    @hookimpl
    def ganbench_run_started(self, run: Any) -> None:
        self._send(run, status="running", budget_kind=run.budget_kind, budget_total=run.budget_total)

    @hookimpl
    def ganbench_step_logged(self, run: Any, record: Mapping[str, float]) -> None:
        self._send(run, status="running", step=record["step"], fraction=record["fraction"],
                   img_per_s=1000 * record["kimg"] / record["seconds"] if record["seconds"] else 0.0)

    @hookimpl
    def ganbench_run_finished(self, run: Any, record: RunRecord) -> None:
        self._send(run, status=record.status, step=record.steps, fraction=1.0 if record.status == "completed" else None,
                   img_per_s=record.images_per_second)


_DATASETS: dict[tuple[str, str, int | None], Any] = {}


def _train_task(inv: Invocation, run_id: str, device_type: str, disabled: list[str], events: Any) -> dict[str, Any]:
    """One run on a worker: the registry from entry points and the invocation's ``--plugin-module`` modules,
    the dataset cached in this worker process."""
    import torch

    torch.set_num_threads(max(1, int(inv.executor.cpus_per_run)))
    registry = build_registry(disabled=disabled, modules=inv.plugin_modules)
    registry.pm.register(_Forwarder(events), name="ray-run-events")
    (run,) = [p for p in plan(registry, inv, device_type=device_type) if p.config.run_id == run_id]
    key = (inv.dataset, str(inv.data_dir), inv.resolution)
    if key not in _DATASETS:
        _DATASETS.clear()
        _DATASETS[key] = load_dataset(registry, inv)
    (record,) = train_planned(registry, inv, [run], _DATASETS[key])
    return record.as_dict()


def _train(ray: Any, registry: Registry, jobs: list[tuple[Invocation, PlannedRun]], gpus: float) -> list[RunRecord]:
    """One task per (invocation, planned run), all submitted at once; their records in the order of ``jobs``."""
    options = jobs[0][0].executor
    events = ray.remote(num_cpus=0)(_Events).remote()
    task = ray.remote(_train_task).options(num_cpus=options.cpus_per_run, num_gpus=gpus,
                                           max_retries=options.max_retries, retry_exceptions=False)
    device_type = "cuda" if gpus > 0 else "cpu"
    refs = {task.remote(inv, run.config.run_id, device_type, sorted(registry.disabled), events): index
            for index, (inv, run) in enumerate(jobs)}
    print(f"ray: {len(refs)} runs on {len(ray.nodes())} node(s), {options.cpus_per_run:g} CPU and {gpus:g} GPU each",
          flush=True)
    progress = Progress(" / ".join(dict.fromkeys(inv.budget.text for inv, _ in jobs)))
    results: dict[int, RunRecord] = {}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for event in ray.get(events.drain.remote()):
                progress.update(event)
            for ref in done:
                inv, run = jobs[refs[ref]]
                results[refs[ref]] = _record(ray, ref, run, inv)
        for event in ray.get(events.drain.remote()):
            progress.update(event)
    except KeyboardInterrupt:
        for ref in pending:  # each run is marked interrupted by its worker and resumes on the next invocation
            ray.cancel(ref)
        raise
    return [results[index] for index in range(len(jobs))]


def _record(ray: Any, ref: Any, run: PlannedRun, inv: Invocation) -> RunRecord:
    """The record a task returned, or, when it kept dying, what its directory says plus why it failed."""
    try:
        return RunRecord.from_dict(ray.get(ref))
    except ray.exceptions.RayError as exc:
        path = inv.runs_dir / run.config.run_id / "run.json"
        try:
            record = RunRecord.read(path)
        except (OSError, ValueError, TypeError):
            c = run.config
            record = RunRecord(run_id=c.run_id, family=c.family, objective=c.objective, dataset=c.dataset,
                               budget=c.budget, seed=c.seed)
        record.status = FAILED
        record.error = (f"its Ray task failed after {inv.executor.max_retries} retries: "
                        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return record


class Progress:
    """One line per run and event worth telling: status, step of budget, img/s."""

    def __init__(self, budget: str) -> None:
        self.budget = budget
        self.last: dict[str, tuple[str, float]] = {}

    def update(self, event: dict[str, Any]) -> None:
        run_id, status = event["run_id"], event["status"]
        previous = self.last.get(run_id)
        now = time.monotonic()
        if previous and previous[0] == status and now - previous[1] < PROGRESS_EVERY:
            return
        self.last[run_id] = (status, now)
        parts = [f"{run_id}: {status}"]
        if event.get("step") is not None:
            fraction = event.get("fraction")
            parts.append(f"step {event['step']}" + (f" ({fraction:.0%} of {self.budget})" if fraction is not None else ""))
        if event.get("img_per_s"):
            parts.append(f"{event['img_per_s']:.0f} img/s")
        parts.append(f"pid {event['pid']}")
        print("  ".join(parts), file=sys.stdout, flush=True)
