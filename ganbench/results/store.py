"""Writing results so that a crash never leaves a half-written file.

Every file goes to a temporary name in the same directory, is flushed to
disk, and is then renamed over the target; a rename within one filesystem is
atomic, so readers see the old file or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ganbench.errors import GanbenchError, UsageError


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the current file is complete, then deliver them to their own handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for signum in dict.fromkeys(caught):
        signal.raise_signal(signum)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file, then move it to ``path``; Ctrl-C waits for the rename."""
    with _interrupts_deferred():
        _atomic_write(Path(path), write)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    tmp = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, _umask_mode())  # mkstemp makes 0600; results are shared like any file `open` would write
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise GanbenchError(
            f"Could not write {path}: {exc.strerror or exc}. Check that {path.parent} is a writable directory "
            "with free space (free space and rerun, or choose another place); files written before are intact."
        ) from exc
    except BaseException:
        _discard(tmp)
        raise


def _umask_mode() -> int:
    """0666 less the process umask: the mode a plain ``open(path, "w")`` would give a new file.

    Linux publishes the umask in /proc (since 4.7), which reads it without
    changing it; elsewhere it can only be read by setting it, which races with
    any other thread creating a file in between, so that is the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            mask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _discard(tmp: str) -> None:
    if not tmp:
        return
    try:
        os.unlink(tmp)
    except OSError:
        pass


def check_writable(directory: Path, what: str, remedy: str) -> None:
    """Fail now, with ``remedy``, when files cannot be created in ``directory`` (created if missing).

    Called before anything expensive: a results folder or a cache found
    unwritable only after training has cost the training.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"Cannot write {what} to {directory}: {exc.strerror or exc}. {remedy}") from exc


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable (a reader of results never crashes on one)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def write_text(path: Path, text: str) -> None:
    """UTF-8; a name that is not valid Unicode (a non-UTF-8 folder name) is kept as ``\\xNN`` escapes."""
    write_bytes(path, text.encode("utf-8", errors="backslashreplace"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows may have different keys (a loss that appears later); columns are their union in first-seen order."""
    rows = list(rows)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def save_torch(path: Path, obj: Any) -> None:
    """Serialised in memory first: torch's own writer reports a full disk as an opaque RuntimeError,
    a plain write as ``OSError(ENOSPC)``, which becomes the message that says to free space."""
    buffer = io.BytesIO()
    import torch  # here, not at the top: listeners import this module and must not cost `ganbench plugins` torch

    torch.save(obj, buffer)
    write_bytes(path, buffer.getbuffer())
