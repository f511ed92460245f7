"""Run locks across hosts, containers and PID namespaces (ganbench.execution.lock).

Holders are real processes, SIGKILLed while they hold the lock, so nothing
they would do on a clean exit runs; where Linux namespaces are available
(root with util-linux `unshare`), the holder really has another hostname or
is PID 1 in its own PID namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganbench.execution.lock import LEASE_ENV, RunLock, RunLockedError

# The holder imports ganbench.execution.lock without the package's __init__ (which imports torch: seconds per holder).
HOLDER = (
    "import sys, time, types; pkg = types.ModuleType('ganbench'); pkg.__path__ = [sys.argv[2]]; "
    "sys.modules['ganbench'] = pkg; from ganbench.execution.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
    "print('held', flush=True); time.sleep(600)"
)
PACKAGE = str(Path(__import__("ganbench").__file__).parent)


def _unshare_works(*flags: str) -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode == 0


def hold(directory: Path, *prefix: str, lease: float = 1.0) -> subprocess.Popen:
    """Start a process that takes the run's lock and keeps it; return once it holds it."""
    env = {**os.environ, LEASE_ENV: str(lease)}
    proc = subprocess.Popen([*prefix, sys.executable, "-c", HOLDER, str(directory), PACKAGE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()
    return proc


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the holder and wait until it and its children (the holder behind `unshare -f`) are gone."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_running(int(pid)) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether any thread of ``pid`` is still alive (a zombie leader may wait for its other threads to exit)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().split(") ", 1)[1][0])
        except (OSError, IndexError):
            continue
    return any(state not in "ZX" for state in states)


def test_a_live_holder_is_refused_with_its_name_and_a_released_lock_is_free(tmp_path):
    proc = hold(tmp_path)
    try:
        with pytest.raises(RunLockedError, match=f"process {proc.pid} on "):
            RunLock(tmp_path, lease=1.0).acquire()
    finally:
        kill(proc)
    with pytest.warns(UserWarning, match="took over"):
        RunLock(tmp_path, lease=1.0).acquire().release()
    RunLock(tmp_path, lease=1.0).acquire().release()  # released cleanly: no warning, free again


@pytest.mark.skipif(not _unshare_works("-u"), reason="needs root and `unshare -u` (UTS namespaces)")
def test_a_holder_killed_on_another_host_is_taken_over_at_once(tmp_path):
    prefix = ["unshare", "-u", "sh", "-c", 'hostname other-host && exec "$0" "$@"']
    proc = hold(tmp_path, *prefix, lease=600.0)
    assert json.loads((tmp_path / "run.lock").read_text())["host"] == "other-host"
    kill(proc)
    start = time.monotonic()
    with pytest.warns(UserWarning, match="took over the run .* from process .* on other-host"):
        RunLock(tmp_path, lease=600.0).acquire().release()
    assert time.monotonic() - start < 300  # the flock proves it dead: no waiting for its 600-second lease


@pytest.mark.skipif(not _unshare_works("-p", "-f", "--mount-proc"), reason="needs root and PID namespaces")
def test_a_holder_that_was_pid_1_in_its_namespace_is_taken_over(tmp_path):
    proc = hold(tmp_path, "unshare", "-p", "-f", "--mount-proc", "--kill-child", lease=600.0)
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == 1
    kill(proc)  # --kill-child: the holder dies with unshare
    with pytest.warns(UserWarning, match="took over .* from process 1 "):
        RunLock(tmp_path, lease=600.0).acquire().release()


def test_an_expired_lease_from_another_machine_is_taken_over(tmp_path):
    """A holder on a machine whose flock we cannot see: only its lease tells, and it stopped being renewed."""
    proc = hold(tmp_path, lease=1.0)
    kill(proc)
    record = json.loads((tmp_path / "run.lock").read_text())
    (tmp_path / "run.lock").write_text(json.dumps({**record, "host": "node7", "boot_id": "another-kernel"}))
    marker = tmp_path / "run.lease"  # filelock's lease marker, one key=value a line, as written on node7
    marker.write_text("".join(f"host=node7\n" if line.startswith("host=") else line
                              for line in marker.read_text().splitlines(keepends=True)))
    start = time.monotonic()
    with pytest.warns(UserWarning, match="on node7"):
        RunLock(tmp_path, lease=1.0).acquire().release()
    assert time.monotonic() - start >= 1.0  # waited for the lease to expire


def test_a_renewed_lease_keeps_the_run_when_flock_is_not_shared(tmp_path):
    """Simulates NFS mounted nolock: the other host holds the lease, its flock is invisible here."""
    from filelock import SoftFileLease

    lease = SoftFileLease(str(tmp_path / "run.lease"), lease_duration=1.0, thread_local=False)
    lease.acquire(timeout=0)
    (tmp_path / "run.lock").write_text(json.dumps({"pid": 4242, "host": "node7", "boot_id": "another-kernel"}))
    try:
        with pytest.raises(RunLockedError, match="process 4242 on node7.*still being renewed"):
            RunLock(tmp_path, lease=1.0).acquire()
    finally:
        lease.release()


def test_an_empty_lock_file_is_free(tmp_path):
    (tmp_path / "run.lock").write_text("")
    with RunLock(tmp_path, lease=1.0) as lock:
        assert lock.held and json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    assert (tmp_path / "run.lock").read_text() == ""
