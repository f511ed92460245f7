"""Stopping cleanly when asked: Ctrl-C (SIGINT) and a scheduler's SIGTERM are handled alike.

SLURM, Kubernetes and Ray send SIGTERM before they kill a job, so a run must
treat it as Ctrl-C: finish the file being written, write a checkpoint at the
next step boundary, mark the run ``interrupted`` and exit (130 for SIGINT,
143 for SIGTERM, the shells' 128 + signal number). Re-running the command
resumes the run.

While a run trains (:func:`stop_at_step_end`), the first signal only asks
the training loop to stop after its current step, so the checkpoint holds a
consistent state; a second signal, or one outside training, interrupts at
once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: Exit statuses of a process stopped by each signal.
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: treated like Ctrl-C, but the process exits with 143."""


_pending: list[int] = []
_training = threading.Event()


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum: int, frame: Any) -> None:
    if _training.is_set() and not _pending:
        _pending.append(signum)  # the loop stops after this step
        return
    raise _interrupt(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Install the SIGINT/SIGTERM handlers for a command (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _pending.clear()


@contextlib.contextmanager
def stop_at_step_end() -> Iterator[None]:
    """While training: the first signal waits for :func:`stop_requested` to be checked at a step boundary."""
    _training.set()
    try:
        yield
    finally:
        _training.clear()


def stop_requested() -> bool:
    return bool(_pending)


def stop() -> None:
    """Raise the pending interrupt (after the loop has checkpointed)."""
    raise _interrupt(_pending.pop())
