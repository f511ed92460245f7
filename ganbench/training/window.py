"""A logging window: the step values a family returns, kept where they were computed until read.

``train_step`` returns detached 0-dim tensors. Reading one (``float(t)``)
makes the host wait for the device, so the loop reads none of them per step:
each step's values are joined into one small tensor per device
(one ``cat``, no read), and the whole window is read at once when the loop
reaches a sync point (the end of a logging window, a grid, an evaluation, a
checkpoint or the end of the budget). The read yields every step's values,
in order, so the loop still sees the exact step at which a loss first became
non-finite.

Values the host already knows (a learning rate, a growth phase) may be 0-dim
CPU tensors; they are kept on the CPU and never copied to the device.
Python floats still work for now but are deprecated: they are converted,
with a warning naming the family, once per run.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ganbench.errors import ContractError

class StepValueError(ContractError):
    """A family's ``train_step`` returned something the loop cannot log."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, contract="family.train_step.logs")


class Window:
    """Per-step values not yet read, one cat per device per step; :meth:`read` returns them as host rows."""

    def __init__(self, who: str) -> None:
        self.who = who
        #: per step, per device: (keys, their values joined into one 1-D tensor on that device)
        self._steps: list[list[tuple[tuple[str, ...], torch.Tensor]]] = []
        self._warned = False  # about Python numbers: once per run, not once per step

    def __len__(self) -> int:
        return len(self._steps)

    def _tensor(self, key: str, value: Any) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise StepValueError(
                    f"The {self.who} returned a tensor of shape {tuple(value.shape)} for {key!r} from train_step; "
                    "return one 0-dim tensor per loss or diagnostic (e.g. loss.detach(), or x.detach().mean())."
                )
            return value.detach().reshape(1)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"The {self.who} returned Python numbers from train_step ({key!r} and maybe others). "
                    "Return detached 0-dim tensors instead (loss.detach(), not float(loss)): every float(tensor) "
                    "makes the host wait for the device at every step. Floats are deprecated in plugin API 1 and "
                    "will be refused from plugin API 2.",
                    DeprecationWarning,
                    stacklevel=4,
                )
            return torch.tensor([float(value)], dtype=torch.float64)
        raise StepValueError(
            f"The {self.who} returned {type(value).__name__} for {key!r} from train_step; "
            "return detached 0-dim tensors."
        )

    def add(self, values: dict[str, Any]) -> None:
        """Keep one step's values without reading them."""
        groups: dict[torch.device, tuple[list[str], list[torch.Tensor]]] = {}
        for key, value in values.items():
            t = self._tensor(key, value)
            keys, tensors = groups.setdefault(t.device, ([], []))
            keys.append(key)
            tensors.append(t)
        self._steps.append([(tuple(keys), torch.cat(tensors)) for keys, tensors in groups.values()])

    def read(self) -> list[dict[str, float]]:
        """Every kept step's values as floats, in step order (one device read per device); then empty."""
        by_device: dict[torch.device, list[torch.Tensor]] = {}
        for step in self._steps:
            for _keys, joined in step:
                by_device.setdefault(joined.device, []).append(joined)
        flat = {device: iter(torch.cat(parts).tolist()) for device, parts in by_device.items()}
        rows = []
        for step in self._steps:
            row: dict[str, float] = {}
            for keys, joined in step:
                values = flat[joined.device]
                row.update((key, float(next(values))) for key in keys)
            rows.append(row)
        self._steps = []
        return rows
