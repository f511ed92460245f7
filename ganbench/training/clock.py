"""The training clock: exact training time without a device-wide synchronisation per step.

The loop starts the clock after a sync point and stops it at the next one
(the end of a logging window, a grid, an evaluation, a checkpoint or the end
of the budget). Only ``stop`` waits for the device: on CUDA it records an
event and waits for that event alone; on the CPU work is synchronous and
``time.perf_counter`` is exact. Between sync points :meth:`elapsed_so_far`
gives the host's view, which on a GPU may run ahead of the device by the
work still queued: a wall-clock budget is therefore settled at sync points
and may overshoot by at most one logging window (the run records by how
much).
"""

from __future__ import annotations

import time

import torch


class TrainClock:
    """Seconds of training between :meth:`start` and :meth:`stop`; see the module docstring."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._t0: float | None = None
        self._event: torch.cuda.Event | None = None

    @property
    def running(self) -> bool:
        return self._t0 is not None

    def start(self) -> None:
        self._t0 = time.perf_counter()
        if self.cuda:
            self._event = torch.cuda.Event(enable_timing=True)
            self._event.record()

    def elapsed_so_far(self) -> float:
        """The host's estimate, without waiting for the device (exact on the CPU)."""
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0

    def stop(self) -> float:
        """Wait for the work launched since :meth:`start` and return its exact duration in seconds."""
        if self._t0 is None:
            return 0.0
        if self._event is not None:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            seconds = self._event.elapsed_time(end) / 1000.0
        else:
            seconds = time.perf_counter() - self._t0
        self._t0, self._event = None, None
        return seconds
