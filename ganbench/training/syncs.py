"""Counting the operations that make the host wait for the device, and the copies that feed it.

On a GPU, every time Python needs a number the device computed (``.item()``,
``float(t)``, ``bool(t)``, ``if t:``, ``t.tolist()``, a copy to the CPU), the
host stops until the device has finished everything queued before it, and
the pipeline drains. The same calls happen on the CPU, where they cost
nothing, so counting them there proves what a GPU run would do.

:class:`SyncCounter` is a :class:`~torch.utils._python_dispatch.TorchDispatchMode`
that counts, while it is active:

- ``reads``: device->host reads. The ATen operations ``_local_scalar_dense``
  (behind ``item``/``float``/``int``/``bool``), ``is_nonzero`` and ``equal``
  (which answer a Python bool), copies from a device to the CPU, and the two
  reads that do not pass through the dispatcher, ``Tensor.tolist`` and
  ``Tensor.numpy`` (wrapped while the counter is active).
- ``h2d``: host->device copies (``_to_copy``/``copy_`` from the CPU to another device).
- ``host_tensors``: tensors built from Python data (``torch.tensor(...)``,
  ``aten::lift_fresh``). On a GPU each becomes a host->device copy if it is
  sent to the device; on a CPU run this is the closest visible sign of one.

Work done inside an optimiser's ``step`` is left out: PyTorch's optimisers
keep their step counters as CPU tensors and read them there, which never
waits for a device.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
_READ_OPS = {_aten._local_scalar_dense.default, _aten.is_nonzero.default, _aten.equal.default}
_COPY_OPS = {_aten._to_copy.default, _aten.copy_.default}


def _device_of(value: Any) -> torch.device | None:
    return value.device if isinstance(value, torch.Tensor) else None


class SyncCounter(TorchDispatchMode):
    """Counts device->host reads, host->device copies and host-made tensors; see the module docstring.

    Use as a context manager; ``by_op`` says which operations were counted, to find the culprit::

        with SyncCounter() as counter:
            model.train_step(draw, ctx)
        assert counter.reads == 0, counter.by_op
    """

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.h2d = 0
        self.host_tensors = 0
        self.by_op: Counter[str] = Counter()
        self._in_optimizer = 0
        self._handles: list[Any] = []
        self._saved: dict[str, Any] = {}

    # -- what is counted ---------------------------------------------------------------

    def _count(self, kind: str, name: str) -> None:
        if self._in_optimizer:
            return
        setattr(self, kind, getattr(self, kind) + 1)
        self.by_op[f"{kind}:{name}"] += 1

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _READ_OPS:
            self._count("reads", str(func.overloadpacket.__name__))
        elif func in _COPY_OPS:
            source = _device_of(args[1] if func is _aten.copy_.default else args[0])
            target = _device_of(args[0]) if func is _aten.copy_.default else kwargs.get("device")
            target = torch.device(target) if target is not None else source
            if source is not None and target is not None and source != target:
                if source.type == "cpu":
                    self._count("h2d", str(func.overloadpacket.__name__))
                elif target.type == "cpu":
                    self._count("reads", str(func.overloadpacket.__name__))
        elif func is _aten.lift_fresh.default:
            self._count("host_tensors", "lift_fresh")
        return func(*args, **kwargs)

    # -- entering and leaving ----------------------------------------------------------

    def _wrap_reader(self, name: str) -> None:
        self._saved[name] = torch.Tensor.__dict__.get(name)
        original = getattr(torch.Tensor, name)

        def reader(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if tensor.device.type == "cpu":  # from a device, the copy to the CPU is dispatched and counted already
                self._count("reads", name)
            return original(tensor, *args, **kwargs)

        setattr(torch.Tensor, name, reader)

    def _enter_optimizer(self, *args: Any) -> None:
        self._in_optimizer += 1

    def _leave_optimizer(self, *args: Any) -> None:
        self._in_optimizer -= 1

    def __enter__(self) -> SyncCounter:
        self._handles = [
            register_optimizer_step_pre_hook(self._enter_optimizer),
            register_optimizer_step_post_hook(self._leave_optimizer),
        ]
        for name in ("tolist", "numpy"):
            self._wrap_reader(name)
        super().__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        super().__exit__(kind, error, trace)
        for name, original in self._saved.items():
            if original is None:  # inherited from the C base class: removing the wrapper restores it
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, original)
        self._saved.clear()
        for handle in self._handles:
            handle.remove()
        self._handles = []
