"""Progress a person can read wherever stderr goes: plain lines in logs and pipes, bars on a terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ganbench.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = ["run", "--device", "cpu", "--metrics=", "--plugins", "vanilla", "--budget", "20steps", "--log-every", "2"]
TENTH = re.compile(r" *(?P<percent>\d+)% step (?P<step>\d+), kimg (?P<kimg>[\d.]+), "
                   r"loss_d [-\d.e]+, loss_g [-\d.e]+, [\d,]+ img/s")
LINE = re.compile(r"^\[ganbench\] vanilla:nonsaturating s0: (?P<text>.*)$")


def test_plain_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    assert main([*RUN, "--results", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err  # no bar redraws in a log
    lines = [m["text"] for m in map(LINE.match, err.splitlines()) if m]
    assert lines[0].startswith("started: budget 20 step")
    assert lines[-1].startswith("completed step 20, kimg 1.280")
    tenths = [TENTH.fullmatch(text) for text in lines[1:-1]]
    assert all(tenths), lines
    # one line at each tenth of the budget: 20 steps logged every 2 steps cross every tenth once
    assert [int(m["percent"]) for m in tenths] == list(range(10, 100, 10))
    assert [int(m["step"]) for m in tenths] == list(range(2, 20, 2))
    assert [float(m["kimg"]) for m in tenths] == pytest.approx([s * 64 / 1000 for s in range(2, 20, 2)])


def test_bars_draw_in_a_pseudo_terminal_reporting_width_zero(tmp_path):
    """A fresh pty reports 0 columns and 0 lines; tqdm alone draws nothing there."""
    primary, secondary = os.openpty()
    assert os.get_terminal_size(secondary) == (0, 0)
    proc = subprocess.Popen([sys.executable, "-m", "ganbench.cli", *RUN, "--results", str(tmp_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(primary, 1 << 16)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    assert proc.wait(timeout=120) == 0
    text = out.decode("utf-8", "replace")
    frames = [f for f in re.split(r"[\r\n]+", text) if f.startswith("vanilla:nonsaturating s0:")]
    assert frames, text
    assert "100%|" in frames[-1] and "20/20 step" in frames[-1] and "completed" in frames[-1]
    assert "█" in frames[-1]
    assert "[ganbench]" not in text  # a terminal gets the bar, not the log lines


def test_training_the_extractor_says_so_before_and_while_it_trains(tmp_path, tiny_dataset, capsys):
    """The first scored run trains its judge (tens of seconds on a CPU): a log must not sit silent through it."""
    from ganbench_builtin.extractors import lenet

    lenet.prepare(tiny_dataset, tmp_path)
    lines = capsys.readouterr().err.splitlines()
    epochs = lenet.epochs_for(len(tiny_dataset))
    assert lines[0] == (f"[ganbench] training the lenet extractor for tiny (40 images, {epochs} epochs on the CPU); "
                        f"done once, then cached in {tmp_path / 'extractors'}")
    progress = [re.fullmatch(r"\[ganbench\] lenet extractor for tiny: epoch (\d+)/(\d+), loss [\d.e+-]+, \d+ s", line)
                for line in lines[1:]]
    assert all(progress) and 3 <= len(progress) <= 6, lines
    assert progress[-1].groups() == (str(epochs), str(epochs))
    lenet.prepare(tiny_dataset, tmp_path)  # cached: nothing to say
    assert capsys.readouterr().err == ""
