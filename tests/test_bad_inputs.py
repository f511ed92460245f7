"""A catalogue of bad inputs: each gets a one-paragraph error that says what to do, and no traceback."""

import errno
import os

import pytest
from PIL import Image

from ganbench.cli import main
from ganbench.errors import GanbenchError
from ganbench.store import write_json


def imagefolder(tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "mixed-sizes":
        Image.new("RGB", (20, 20)).save(folder / "a.png")
        Image.new("RGB", (24, 30)).save(folder / "b.png")
    if kind == "unlabelled":
        for i in range(4):
            Image.new("L", (16, 16), 30 * i).save(folder / f"{i}.png")
    if kind == "not-an-image":
        (folder / "x.png").write_text("hello")
    return str(folder)


CASES = {
    # id: (extra argv, expected fragments of the message)
    "unknown plugin": (["--plugins", "dcgen"], ["Unknown model 'dcgen'", "Did you mean 'dcgan'", "vanilla"]),
    "unknown dataset": (["--dataset", "mnsit"], ["Unknown dataset 'mnsit'", "Did you mean 'mnist'"]),
    "unknown objective": (["--plugins", "dcgan:hinje"], ["Unknown objective 'hinje'", "Did you mean 'hinge'"]),
    "unknown metric": (["--metrics", "fdi"], ["Unknown metric 'fdi'"]),
    "malformed budget": (["--budget", "lots"], ["Cannot read the budget 'lots'", "50kimg"]),
    "zero budget": (["--budget", "0s"], ["must be positive"]),
    "negative budget": (["--budget=-5m"], ["must be positive"]),
    "budget without unit": (["--budget", "5000"], ["give a number followed by a unit"]),
    "budget units mixed up": (["--budget", "50k"], ["Unknown budget unit 'k'", "50kimg"]),
    "fractional steps": (["--budget", "10.5steps"], ["whole number of steps"]),
    "missing image folder": (["--dataset", "imagefolder:/no/such/folder"], ["does not exist", "imagefolder:PATH"]),
    "image folder without images": (["--dataset", "imagefolder:{empty}"], ["holds no images"]),
    "unreadable image": (["--dataset", "imagefolder:{not-an-image}"], ["Cannot read the image", "Remove or replace"]),
    "images of mixed sizes": (["--dataset", "imagefolder:{mixed-sizes}"], ["2 different sizes", "--resolution"]),
    "unlabelled data for conditional": (
        ["--plugins", "conditional", "--dataset", "imagefolder:{unlabelled}"], ["needs class labels"]),
    "incompatible pair": (["--plugins", "dcgan:began"], ["cannot train with the objective 'began'", "Objectives that work"]),
    "dataset argument it does not take": (["--dataset", "digits:big"], ["takes no argument"]),
    "unknown split": (["--dataset", "mnist:validation", "--no-download"], ["mnist:test"]),
    "dataset not on disk": (["--dataset", "cifar10", "--no-download", "--data-dir", "{tmp}"],
                            ["not on disk", "cifar-10-batches-py", "--data-dir"]),
    "cuda without a gpu": (["--device", "cuda"], ["no CUDA GPU", "--device cpu"]),
    "unknown device": (["--device", "tpu"], ["Unknown device 'tpu'"]),
    "results not writable": (["--results", "{file}/results"], ["Cannot write results", "--results DIR"]),
    "eval fraction out of range": (["--eval-at", "1.5"], ["must lie in (0, 1]"]),
    "non-positive learning rate": (["--lr", "-0.1"], ["--lr must be positive"]),
    "resume and fresh together": (["--resume", "--fresh"], ["contradict"]),
    "missing inception weights": (["--metrics", "fid", "--extractor", "inception-v3-compat",
                                   "--inception-weights", "{tmp}/nope.pth", "--budget", "2steps"],
                                  ["weights-inception-2015-12-05"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_a_clear_error(case, tmp_path, capsys):
    argv, fragments = CASES[case]
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    fills = {"tmp": str(tmp_path), "file": str(blocker)}
    for kind in ("empty", "mixed-sizes", "unlabelled", "not-an-image"):
        fills[kind] = imagefolder(tmp_path, kind) if any("{" + kind + "}" in a for a in argv) else ""
    argv = [a.format(**fills) for a in argv]
    results = ["--results", str(tmp_path / "results")] if "--results" not in argv else []
    code = main(["run", *_defaults(argv), *results, *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: ")
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def _defaults(argv):
    out = [] if any(a.startswith("--metrics") for a in argv) else ["--metrics="]
    if "--plugins" not in argv:
        out += ["--plugins", "vanilla"]
    if not any(a.startswith("--budget") for a in argv):
        out += ["--budget", "2steps"]
    return out


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "run", "--plugins", "dcgen", "--results", str(tmp_path)]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["--seeds", "0"], "must be at least 1"),
    (["--batch-size", "0"], "must be at least 1"),
    (["--seeds", "two"], "expected a whole number"),
])
def test_argument_errors_name_the_option(argv, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_full_disk_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    write_json(target, {"ok": 1})

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(GanbenchError, match="No space left on device.*free space"):
        write_json(target, {"ok": 2})
    assert target.read_text().strip().endswith("}") and '"ok": 1' in target.read_text()
    assert not list(tmp_path.glob("*.tmp"))
