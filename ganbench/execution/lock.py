"""One process trains a run at a time, across hosts, containers and PID namespaces.

Two layers, both from ``filelock``:

``run.lock``   an ``flock`` the kernel releases when its holder dies, however it
               dies (SIGKILL, OOM killer, a container torn down). Winning it on
               a local filesystem, or on a network filesystem whose ``flock`` is
               coherent between clients (NFSv4, Lustre with ``flock``, CephFS,
               GPFS), proves that no live process holds the run. While held, the
               file names its holder (host, pid, kernel boot id) for messages.
``run.lease``  a lease renewed by a heartbeat thread. It covers filesystems whose
               ``flock`` is local to each client (NFS mounted ``nolock``, some
               FUSE filesystems): there two hosts can both "win" the ``flock``,
               but only one can hold an unexpired lease. A lease that nobody
               renewed for ``lease_duration`` seconds is taken over.

A PID or hostname never decides anything: PIDs repeat across namespaces (a
container's ganbench is often PID 1) and hostnames across containers. When
the previous holder ran on the same kernel (same boot id), the ``flock`` just
won proves it dead and its lease is broken at once; otherwise its lease must
expire first (:data:`LEASE_ENV`, default 30 s).
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any

from filelock import SoftFileLease, Timeout, UnixFileLock

from ganbench.errors import GanbenchError

LOCK, LEASE = "run.lock", "run.lease"
#: Seconds a lease lives without a heartbeat before another host may take the run over.
LEASE_ENV = "GANBENCH_LOCK_LEASE"
DEFAULT_LEASE = 30.0


class RunLockedError(GanbenchError):
    """The run is being trained by another live process."""

    def __init__(self, message: str, holder: str = "another process") -> None:
        super().__init__(message)
        #: Who holds the run, as a phrase for messages ("process 12 on node3").
        self.holder = holder


def boot_id() -> str:
    """This kernel's identity: processes sharing it see each other's ``flock``."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux: the host name is the best stand-in
        return socket.gethostname()


def lease_duration() -> float:
    text = os.environ.get(LEASE_ENV, "")
    try:
        value = float(text) if text else DEFAULT_LEASE
    except ValueError:
        raise GanbenchError(f"{LEASE_ENV}={text!r} is not a number of seconds.") from None
    if value <= 0:
        raise GanbenchError(f"{LEASE_ENV} must be a positive number of seconds, got {value}.")
    return value


def _owner(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "another process"
    return f"process {owner.get('pid')} on {owner.get('host')}"


class RunLock:
    """``with RunLock(run_directory):`` holds the run for this process, or raises :class:`RunLockedError`."""

    def __init__(self, directory: Path, lease: float | None = None, wait: bool = False) -> None:
        self.path = Path(directory) / LOCK
        self.lease_path = Path(directory) / LEASE
        self.lease = lease if lease is not None else lease_duration()
        #: Block until the holder lets go instead of raising: two identical invocations then both
        #: end with the run's result, the second having waited for the first (issue 13).
        self.wait = wait
        self._flock: UnixFileLock | None = None
        self._lease: SoftFileLease | None = None

    @property
    def held(self) -> bool:
        return self._flock is not None

    def acquire(self) -> RunLock:
        flock = UnixFileLock(str(self.path), thread_local=False)
        try:
            flock.acquire(timeout=-1 if self.wait else 0, poll_interval=0.5)
        except Timeout:
            holder = _describe(_owner(self.path))
            raise RunLockedError(
                f"The run in {self.path.parent} is already being trained by {holder} "
                f"(lock file {self.path}). It is released the moment that process ends, however it ends; "
                "wait for it, or stop that process.", holder,
            ) from None
        try:
            self._take_lease(_owner(self.path))
        except BaseException:
            flock.release()
            raise
        self._flock = flock
        self.path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "boot_id": boot_id()}))
        return self

    def _take_lease(self, previous: dict[str, Any]) -> None:
        lease = SoftFileLease(str(self.lease_path), lease_duration=self.lease, thread_local=False,
                              on_compromise=lambda why: warnings.warn(f"lost the lease {self.lease_path}: {why}"))
        stale = self.lease_path.exists()
        if stale and previous.get("boot_id") == boot_id():
            # Same kernel: the flock just won proves the holder is dead, even in another PID namespace.
            self.lease_path.unlink(missing_ok=True)
        try:
            lease.acquire(timeout=0 if not self.lease_path.exists() else self.lease * 1.5)
        except Timeout:
            raise RunLockedError(
                f"The run in {self.path.parent} is held by {_describe(previous)}, whose lease {self.lease_path} "
                f"is still being renewed, although its flock was free: this filesystem does not share flock "
                "between hosts. Wait for that process to finish, or stop it.", _describe(previous),
            ) from None
        if stale:
            warnings.warn(f"took over the run in {self.path.parent} from {_describe(previous)}, "
                          "which is no longer running", stacklevel=3)
        self._lease = lease

    def release(self) -> None:
        if self._flock is None:
            return
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        self.path.write_text("")  # free: the file stays, since unlinking a flock file races with a contender
        self._flock.release()
        self._flock = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
