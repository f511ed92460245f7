"""One process per run: a lock file in the run directory.

Two ``ganbench run`` processes may share a results directory (each run has
its own folder and every file is replaced atomically), but the same run must
never be trained twice at once. A lock left by a process that has died is
taken over, with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path

from .errors import GanbenchError

LOCK = "run.lock"


class RunLockedError(GanbenchError):
    """The run is being trained by another live process."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK
        self.held = False

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    owner = {}
                pid, host = owner.get("pid"), owner.get("host")
                if isinstance(pid, int) and (host != me["host"] or _alive(pid)):
                    raise RunLockedError(
                        f"The run in {self.path.parent} is already being trained by process {pid} on {host} "
                        f"(lock file {self.path}). Wait for it to finish, or if that process is gone for good, "
                        "delete the lock file and run again."
                    ) from None
                warnings.warn(f"taking over the stale lock {self.path} left by dead process {pid}", stacklevel=2)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return self
        raise RunLockedError(f"Could not lock {self.path}; another process keeps creating it.")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
