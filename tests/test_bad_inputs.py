"""A catalogue of hostile and broken inputs, one named case each, across run, leaderboard, report,
check, baseline and plugins. Every case ends with a one-paragraph message on stderr and the right exit
code (2 for usage, 1 for failed runs or regressions, 0 when a bad record is skipped with a warning),
no traceback without ``--debug``, and nothing already written lost.

Cases call ``ganbench.cli.main`` in-process with tiny budgets (``--budget 2steps``, ``--metrics=``);
the results directories of the non-training commands are synthetic (``helpers.make_run``).
"""

import errno
import json
import os
import pickle
import re
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ganbench import hookimpl
from ganbench.cli import main
from ganbench.errors import GanbenchError
from ganbench.results.store import write_json
from helpers import make_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds one row: a decompression bomb's header."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0")) + _chunk(b"IEND", b"")


class Payload:
    """What a hostile pickle would run while it loads: create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


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
    if kind == "one-pixel":
        for i in range(4):
            Image.new("L", (1, 1), 60 * i).save(folder / f"{i}.png")
    if kind == "bomb":
        (folder / "bomb.png").write_bytes(png_header_only(15000, 15000))
    if kind == "float-tiff":
        Image.fromarray(np.full((8, 8), 7.5, dtype=np.float32)).save(folder / "hdr.tif")
    if kind == "nan-tiff":
        Image.fromarray(np.full((8, 8), np.nan, dtype=np.float32)).save(folder / "nan.tif")
    if kind == "int32-tiff":
        Image.fromarray(np.full((8, 8), 1 << 20, dtype=np.int32)).save(folder / "deep.tif")
    return str(folder)


def cifar_folder(tmp_path, kind):
    """A data directory whose ``cifar-10-batches-py/test_batch`` is hostile or broken."""
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    if kind == "cifar-code":
        content = pickle.dumps({"data": Payload(tmp_path / "pwned"), "labels": [0]})
    elif kind == "cifar-truncated":
        content = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})[:40]
    else:  # cifar-wrong-shape: a loadable pickle that is not a batch
        content = pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    (folder / "test_batch").write_bytes(content)
    return str(tmp_path / "data")


IMAGE_KINDS = ("empty", "mixed-sizes", "unlabelled", "not-an-image", "one-pixel", "bomb", "float-tiff", "nan-tiff",
               "int32-tiff")
CIFAR_KINDS = ("cifar-code", "cifar-truncated", "cifar-wrong-shape")


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
    "cuda without a gpu": (["--device", "cuda", "NO-GPU"], ["no CUDA GPU", "--device cpu"]),
    "unknown device": (["--device", "tpu"], ["Unknown device 'tpu'"]),
    "results not writable": (["--results", "{file}/results"], ["Cannot write results", "--results DIR"]),
    "eval fraction out of range": (["--eval-at", "1.5"], ["must lie in (0, 1]"]),
    "non-positive learning rate": (["--lr", "-0.1"], ["--lr must be positive"]),
    "resume and fresh together": (["--resume", "--fresh"], ["contradict"]),
    "missing inception weights": (["--metrics", "fid", "--extractor", "inception-v3-compat",
                                   "--inception-weights", "{tmp}/nope.pth", "--budget", "2steps"],
                                  ["weights-inception-2015-12-05"]),
    "learning rate nan": (["--lr", "nan"], ["--lr must be a finite number"]),
    "learning rate 1e300": (["--lr", "1e300"], ["--lr must be a finite number in (0, 10]"]),
    "seed beyond 64 bits": (["--seed", str(2**64)], ["--seed must lie in 0..4294967295"]),
    "negative seed": (["--seed=-1"], ["--seed must lie in"]),
    "batch larger than the dataset": (["--batch-size", "5000"], ["larger than the dataset 'digits'", "1,797 images",
                                                                  "--batch-size 1797"]),
    "resolution 3": (["--resolution", "3"], ["3x3 pixels", "at least 8x8"]),
    "resolution 7": (["--resolution", "7"], ["7x7 pixels", "at least 8x8"]),
    "1x1 images": (["--dataset", "imagefolder:{one-pixel}"], ["'imagefolder:one-pixel'", "1x1 pixels",
                                                              "--resolution 8"]),
    "resolution beyond memory": (["--resolution", "100000"], ["GiB of memory", "smaller --resolution"]),
    "decompression bomb": (["--dataset", "imagefolder:{bomb}"], ["Cannot read the image", "bomb.png", "Remove or replace"]),
    "float image outside [0, 1]": (["--dataset", "imagefolder:{float-tiff}"], ["hdr.tif", "outside [0, 1]"]),
    "float image of NaN": (["--dataset", "imagefolder:{nan-tiff}"], ["nan.tif", "NaN"]),
    "32-bit image beyond 16 bits": (["--dataset", "imagefolder:{int32-tiff}"], ["deep.tif", "outside 0-65535"]),
    "cifar pickle that runs code": (["--dataset", "cifar10:test", "--no-download", "--data-dir", "{cifar-code}"],
                                    ["Refusing to read", "test_batch", "io.open"]),
    "truncated cifar batch": (["--dataset", "cifar10:test", "--no-download", "--data-dir", "{cifar-truncated}"],
                              ["not an official CIFAR-10 batch"]),
    "cifar batch of the wrong shape": (["--dataset", "cifar10:test", "--no-download", "--data-dir",
                                        "{cifar-wrong-shape}"], ["not an official CIFAR-10 batch"]),
    "cache directory under /dev/null": (["--metrics", "fid", "--eval-samples", "20", "ENV:GANBENCH_CACHE_DIR=/dev/null/ganbench"],
                                        ["Cannot write the scoring cache", "/dev/null/ganbench", "GANBENCH_CACHE_DIR"]),
    "plugin asked for but disabled": (["ENV:GANBENCH_DISABLE_PLUGINS=vanilla"],
                                      ["Unknown model 'vanilla'", "Disabled by --no-plugin or GANBENCH_DISABLE_PLUGINS"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_a_clear_error(case, tmp_path, capsys, monkeypatch):
    argv, fragments = CASES[case]
    for setting in (a[4:] for a in argv if a.startswith("ENV:")):
        monkeypatch.setenv(*setting.split("=", 1))
    if "NO-GPU" in argv:  # the case means a host without CUDA, whatever this one has
        monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    argv = [a for a in argv if not a.startswith("ENV:") and a != "NO-GPU"]
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    fills = {"tmp": str(tmp_path), "file": str(blocker)}
    for kind in IMAGE_KINDS + CIFAR_KINDS:
        make = imagefolder if kind in IMAGE_KINDS else cifar_folder
        fills[kind] = make(tmp_path, kind) if any("{" + kind + "}" in a for a in argv) else ""
    argv = [a.format(**fills) for a in argv]
    results = ["--results", str(tmp_path / "results")] if "--results" not in argv else []
    code = main(["run", "--device", "cpu", *_defaults(argv), *results, *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: ")
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not (tmp_path / "pwned").exists()  # no planted file ever ran code
    assert not list((tmp_path / "results").glob("runs/*/checkpoint.pt"))  # refused before any training


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
        main(["run", "--device", "cpu", *argv])
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


# -- leaderboard, report, check, baseline, plugins: hostile results directories ----------------------


def _good_results(tmp_path, seeds=(0, 1)):
    """Completed seeds of one family and one of another: what the broken inputs are added to."""
    root = tmp_path / "results"
    for seed in seeds:
        make_run(root, "dcgan", seed=seed, rows=3, evaluations=1)
    make_run(root, "vanilla", rows=3, evaluations=1)
    return root


def _plant_record(content):
    def plant(root, tmp_path):
        d = make_run(root, "broken", rows=3, evaluations=1)
        (d / "run.json").write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        return str(d / "run.json")
    return plant


def _record_with(**fields):
    def plant(root, tmp_path):
        d = make_run(root, "broken", rows=3, evaluations=1)
        record = json.loads((d / "run.json").read_text())
        record.update(fields)
        (d / "run.json").write_text(json.dumps(record))
        return str(d / "run.json")
    return plant


#: Broken run.json files: every reading command skips the record with a warning naming the file, and goes on.
BAD_RECORDS = {
    "run.json of null": _plant_record(None),
    "run.json of a list": _plant_record([]),
    "run.json of a string": _plant_record("x"),
    "binary run.json": _plant_record(b"\xff\xfe\x00\x01garbage"),
    "empty run.json": _plant_record(b""),
    "scores as a list": _record_with(scores=[1, 2]),
    "losses as a string": _record_with(losses="x"),
    "best as an empty object": _record_with(best={}),
    "scores_at holding a number": _record_with(scores_at={"50%": 3}),
    "a score that is text": _record_with(scores={"fid": "low"}),
    "seed as text": _record_with(seed="zero"),
    "no family": _record_with(family=None),
}


#: The report draws figures (slow on a shared CPU): it gets a few records, the cheap commands all of them.
RECORD_CASES = [(case, command) for case in sorted(BAD_RECORDS) for command in ("leaderboard", "check")] + [
    (case, "report") for case in ("run.json of null", "scores as a list")]


@pytest.mark.parametrize("case, command", RECORD_CASES)
def test_a_broken_record_is_skipped_with_a_warning(case, command, tmp_path, capsys):
    root = _good_results(tmp_path, seeds=() if command == "report" else (0, 1))
    assert main(["baseline", "--results", str(root), "--out", str(tmp_path / "base.json")]) == 0
    culprit = BAD_RECORDS[case](root, tmp_path)
    kept = {p: p.read_bytes() for p in root.glob("runs/*/run.json")}
    argv = {"leaderboard": ["leaderboard", str(root)], "report": ["report", str(root)],
            "check": ["check", "--baseline", str(tmp_path / "base.json"), "--results", str(root)]}[command]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    assert f"warning: skipped unreadable run record {culprit}" in err and culprit not in out
    assert {p: p.read_bytes() for p in root.glob("runs/*/run.json")} == kept


def _baseline_doc(root, tmp_path):
    assert main(["baseline", "--results", str(root), "--out", str(tmp_path / "base.json")]) == 0
    return json.loads((tmp_path / "base.json").read_text())


def _bad_baseline(mutate):
    def plant(root, tmp_path):
        doc = _baseline_doc(root, tmp_path)
        content = mutate(doc)
        path = tmp_path / "bad.json"
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        return ["check", "--baseline", str(path), "--results", str(root)]
    return plant


def _set_first_row(**fields):
    def mutate(doc):
        doc["rows"][0].update(fields)
        return doc
    return mutate


def _first_score(value):
    def mutate(doc):
        row = next(r for r in doc["rows"] if r["scores"])
        row["scores"][next(iter(row["scores"]))] = value
        return doc
    return mutate


def _argv(*argv):
    return lambda root, tmp_path: [a.format(root=root, tmp=tmp_path) for a in argv]


def _regressed(root, tmp_path):
    doc = _baseline_doc(root, tmp_path)
    doc["rows"].append({**doc["rows"][0], "family": "lost"})
    (tmp_path / "base.json").write_text(json.dumps(doc))
    return ["check", "--baseline", str(tmp_path / "base.json"), "--results", str(root)]


def _score_worse(root, tmp_path):
    doc = _baseline_doc(root, tmp_path)
    row = next(r for r in doc["rows"] if r["family"] == "vanilla")
    fid = next(k for k in row["scores"] if k.startswith("fid"))
    row["scores"][fid].update(mean=1.0, tolerance=0.5)
    (tmp_path / "base.json").write_text(json.dumps(doc))
    return ["check", "--baseline", str(tmp_path / "base.json"), "--results", str(root)]


def _config_list(root, tmp_path):
    for seed in (0, 1):  # the report draws every run: keep it to two, for speed
        shutil.rmtree(next(root.glob(f"runs/dcgan-*_s{seed}_*")))
    d = make_run(root, "halfway", rows=3, evaluations=1)
    (d / "run.json").unlink()
    (d / "config.json").write_text("[1, 2]")
    return ["report", str(root)]


#: (how to build the argv from a good results directory, exit code, fragments of the last stderr line or of stdout)
COMMAND_CASES = {
    "leaderboard of a missing directory": (_argv("leaderboard", "{tmp}/nowhere"), 0, ["No runs found"]),
    "leaderboard ranked by an unknown score": (_argv("leaderboard", "{root}", "--rank-by", "bogus"), 2,
                                               ["--rank-by 'bogus' matches 0 columns"]),
    "report of a directory without runs": (_argv("report", "{tmp}/nowhere"), 2, ["No runs found"]),
    "report --out under a file": (_argv("report", "{root}", "--out", "{tmp}/file/report.html"), 2,
                                  ["Cannot write the report", "file", "--out FILE"]),
    "baseline --out under a file": (_argv("baseline", "--results", "{root}", "--out", "{tmp}/file/base.json"), 2,
                                    ["Could not write", "base.json"]),
    "baseline of a directory without runs": (_argv("baseline", "--results", "{tmp}/nowhere", "--out", "{tmp}/b.json"),
                                             2, ["No runs to make a baseline from"]),
    "check against a missing baseline": (_argv("check", "--baseline", "{tmp}/none.json", "--results", "{root}"), 2,
                                         ["does not exist", "ganbench baseline"]),
    "check with neither --suite nor --results": (
        lambda root, tmp_path: ["check", "--baseline", _baseline_doc(root, tmp_path) and str(tmp_path / "base.json")],
        2, ["--suite benchmarks/results.toml", "--results DIR"]),
    "baseline that is not JSON": (_bad_baseline(lambda doc: b"{not json"), 2, ["Cannot read the baseline"]),
    "binary baseline": (_bad_baseline(lambda doc: b"\xff\xfe\x00"), 2, ["Cannot read the baseline"]),
    "baseline of another format": (_bad_baseline(lambda doc: {**doc, "format": "other/9"}), 2,
                                   ["is not a ganbench baseline"]),
    "baseline row that is a string": (_bad_baseline(lambda doc: {**doc, "rows": ["x"]}), 2,
                                      ["row 1 is not an object"]),
    "baseline row without a family": (_bad_baseline(_set_first_row(family=None)), 2, ["row 1 has no family"]),
    "baseline scores as a list": (_bad_baseline(_set_first_row(scores=[1])), 2, ["is not an object"]),
    "baseline score without a mean": (_bad_baseline(_first_score({"tolerance": 1})), 2,
                                      ["has no finite 'mean' and 'tolerance'"]),
    "baseline throughput as text": (_bad_baseline(_set_first_row(throughput={"img_per_s": "fast"})), 2,
                                    ["throughput that is not a number"]),
    "baseline row missing from the results": (_regressed, 1, ["REGRESSED", "missing from the results"]),
    "a score worse than the baseline": (_score_worse, 1, ["REGRESSED", "worse by"]),
    "report of a run whose config.json is a list": (_config_list, 0, ["report.html"]),
    "plugins with an unknown --no-plugin": (_argv("--no-plugin", "nothing-such", "plugins"), 0, ["vanilla"]),
}


@pytest.mark.parametrize("case", sorted(COMMAND_CASES))
def test_bad_input_to_a_command(case, tmp_path, capsys):
    build, expected_code, fragments = COMMAND_CASES[case]
    (tmp_path / "file").write_text("a file where a directory should be")
    root = _good_results(tmp_path)
    argv = build(root, tmp_path)
    kept = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == expected_code, (out, err)
    assert "Traceback" not in err
    text = err.strip().splitlines()[-1] if expected_code == 2 else out
    if expected_code == 2:
        assert text.startswith("error: ")
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert all(p.read_bytes() == data for p, data in kept.items())  # nothing already written lost


# -- security: planted files never run code and never leak --------------------------------------------


def test_a_report_embeds_no_link_to_a_secret_and_no_fake_png(tmp_path):
    from ganbench.results.report import write_report

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    outside_png = tmp_path / "outside.png"
    Image.new("L", (4, 4), 200).save(outside_png)
    root = tmp_path / "results"
    d = make_run(root, "dcgan", rows=3, evaluations=1)
    (d / "traceback.txt").symlink_to(secret)
    (d / "samples" / "final.png").unlink()
    (d / "samples" / "final.png").symlink_to(secret)
    (d / "samples" / "frac050.png").write_text("TOP-SECRET-TOKEN in a file named .png")
    (d / "samples" / "frac100.png").unlink()
    (d / "samples" / "frac100.png").symlink_to(outside_png)
    text = write_report(root).read_text()
    assert "TOP-SECRET-TOKEN" not in text
    import base64
    assert base64.b64encode(b"TOP-SECRET").decode()[:12] not in text
    assert base64.b64encode(outside_png.read_bytes()).decode()[:40] not in text
    assert "frac000" in text  # the regular grid inside the run is still shown


def test_a_markdown_leaderboard_carries_no_raw_html(tmp_path):
    root = tmp_path / "results"
    d = make_run(root, "dcgan", rows=2, evaluations=1)
    record = json.loads((d / "run.json").read_text())
    record["dataset"] = "imagefolder:/x/<img src=x onerror=alert(1)>[a](javascript:alert(1))|"
    (d / "run.json").write_text(json.dumps(record))
    assert main(["leaderboard", str(root)]) == 0
    md = (root / "leaderboard.md").read_text()
    assert "<img" not in md and not re.search(r"(?<!\\)\]\(javascript", md)
    assert "&lt;img src=x onerror=alert(1)&gt;" in md


def test_cifar_batches_written_by_pickle_still_load(tmp_path, registry):
    """The data-only unpickler reads what pickle writes for a real batch, at every protocol."""
    from ganbench.plugin.data import DatasetRequest

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for protocol, name in ((2, "test_batch"),):
        data = np.arange(2 * 3072, dtype=np.uint64).astype(np.uint8).reshape(2, 3072)
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": [3, 7], "batch_label": "x"}, protocol))
    ds = registry.dataset("cifar10").load(DatasetRequest("cifar10", "test", tmp_path, download=False))
    assert ds.labels.tolist() == [3, 7] and ds.images.shape == (2, 3, 32, 32)
    assert ds.images.flatten()[:5].tolist() == [0, 1, 2, 3, 4]


# -- permissions, --fresh, changed data ---------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_written_honour_the_umask(tmp_path, umask, mode):
    from ganbench.results.store import save_torch, write_text

    old = os.umask(umask)
    try:
        write_json(tmp_path / "a" / "run.json", {"ok": 1})
        write_text(tmp_path / "leaderboard.md", "x")
        save_torch(tmp_path / "c.pt", {"w": 1})
    finally:
        os.umask(old)
    for name in ("a/run.json", "leaderboard.md", "c.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


class _Interrupt:
    """A listener that stops the invocation as a Ctrl-C would, before the first new checkpoint."""

    @hookimpl
    def ganbench_run_started(self, run):
        raise KeyboardInterrupt


def _invocation(results, fresh=False, dataset="digits", batch=64):
    from ganbench.training.budget import Budget
    from ganbench.plugin.model import TrainSettings
    from ganbench.execution.runner import Invocation

    return Invocation(plugins=("vanilla",), dataset=dataset, budget=Budget.parse("2steps"), results=results,
                      device="cpu", settings=TrainSettings(batch_size=batch), fresh=fresh)


def test_an_interrupted_fresh_run_never_brings_the_old_result_back(tmp_path):
    from ganbench.plugin.registry import PluginInfo, build_registry
    from ganbench.execution.runner import execute

    [first] = execute(build_registry(disabled=["progress"]), _invocation(tmp_path))
    assert first.status == "completed"
    interrupting = build_registry(disabled=["progress"], extra=[(PluginInfo("stop", "x", "test", "0"), _Interrupt())])
    with pytest.raises(KeyboardInterrupt):
        execute(interrupting, _invocation(tmp_path, fresh=True))
    run_dir = tmp_path / "runs" / first.run_id
    assert not (run_dir / "checkpoint.pt").exists()
    [again] = execute(build_registry(disabled=["progress"]), _invocation(tmp_path))
    assert again.status == "completed" and again.resumed_from_step is None  # trained anew, not the old weights
    assert again.started_at >= first.finished_at


def test_a_changed_image_folder_is_a_new_run(tmp_path):
    from ganbench.plugin.registry import build_registry
    from ganbench.execution.runner import execute

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(8):
        Image.new("L", (8, 8), 30 * i).save(folder / f"{i}.png")
    registry = build_registry(disabled=["progress"])
    [before] = execute(registry, _invocation(tmp_path / "r", dataset=f"imagefolder:{folder}", batch=4))
    for i in range(8, 40):
        Image.new("L", (8, 8), i).save(folder / f"{i}.png")
    [after] = execute(registry, _invocation(tmp_path / "r", dataset=f"imagefolder:{folder}", batch=4))
    assert before.status == after.status == "completed"
    assert after.run_id != before.run_id and after.config_hash != before.config_hash
    config = json.loads((tmp_path / "r" / "runs" / after.run_id / "config.json").read_text())
    assert len(config["data_fingerprint"]) == 16
    assert str(tmp_path) not in after.run_id and "imagefolder_faces" in after.run_id


def test_an_image_folders_label_is_its_content_and_short_name(tmp_path, registry):
    from ganbench.plugin.data import DatasetRequest
    from ganbench_builtin.extractors.lenet import extractor_name

    labelled = []
    for parent in ("here", "there/deeper"):
        folder = tmp_path / parent / "digits"
        for cls in ("a", "b"):
            (folder / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("L", (8, 8), 40 * i + (cls == "b") * 100).save(folder / cls / f"{i}.png")
        labelled.append(registry.dataset("imagefolder").load(
            DatasetRequest("imagefolder", str(folder), tmp_path, resolution=None)))
    names = {extractor_name(ds) for ds in labelled}
    assert len(names) == 1 and str(tmp_path).strip("/").split("/")[0] not in names.pop()
    assert labelled[0].meta["fingerprint"] == labelled[1].meta["fingerprint"]


def test_16_bit_png_and_float_tiff_keep_their_scale(tmp_path, registry):
    from ganbench.plugin.data import DatasetRequest

    ramp = np.linspace(0, 1, 64).reshape(8, 8)
    Image.fromarray((ramp * 65535).round().astype(np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "float.tif")
    ds = registry.dataset("imagefolder").load(DatasetRequest("imagefolder", str(tmp_path), tmp_path))
    expected = (ramp * 255).round()
    for image in ds.images:
        assert np.abs(image[0].numpy().astype(float) - expected).max() <= 1
        assert len(np.unique(image.numpy())) > 50  # a gradient, not a {0, 255} mask


# -- disks, caches, checkpoints -----------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (``mount`` options) under tmp_path; skip, saying why, where the test cannot."""
    import shutil
    import subprocess

    mounted = []

    def mount(options):
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        if not shutil.which("mount") or os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (or CAP_SYS_ADMIN) and the mount command")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_real_full_disk_says_to_free_space(tmpfs, capsys):
    disk = tmpfs("size=512k")
    code = main(["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "2steps", "--metrics=", "--results", str(disk / "r")])
    err = capsys.readouterr().err
    assert code in (1, 2) and "Traceback" not in err
    assert "No space left on device" in err and "free space and rerun" in err
    assert "inline_container" not in err and "unexpected pos" not in err
    assert not list(disk.rglob("*.tmp"))


def test_a_read_only_results_directory_fails_before_training(tmpfs, capsys):
    read_only = tmpfs("ro,size=64k")
    code = main(["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "2steps", "--metrics=", "--results", str(read_only)])
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "Cannot write results" in message and "Read-only file system" in message


def test_report_and_baseline_into_a_read_only_directory(tmpfs, tmp_path, capsys):
    read_only = tmpfs("ro,size=64k")
    root = _good_results(tmp_path, seeds=(0,))
    assert main(["report", str(root), "--out", str(read_only / "report.html")]) == 2
    assert "Read-only file system" in capsys.readouterr().err
    assert main(["baseline", "--results", str(root), "--out", str(read_only / "b.json")]) == 2
    assert "Read-only file system" in capsys.readouterr().err


def test_a_corrupt_cached_extractor_is_named_and_rebuilt(tmp_path, tiny_dataset):
    from ganbench_builtin.extractors import lenet

    name, path = lenet.prepare(tiny_dataset, tmp_path)
    path.write_bytes(path.read_bytes()[:100])  # truncated, as a full disk or a killed copy leaves it
    with pytest.warns(UserWarning, match=f"cached extractor {re.escape(str(path))} is corrupt"):
        again, rebuilt = lenet.prepare(tiny_dataset, tmp_path)
    assert (again, rebuilt) == (name, path)
    net, payload = lenet.load(path)  # loadable again
    assert payload["data_sha256"].startswith(name.rsplit("-", 1)[1])


def _finished_run(tmp_path):
    argv = ["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "2steps", "--metrics=", "--eval-at=", "--results", str(tmp_path)]
    assert main(argv) == 0
    return argv, next((tmp_path / "runs").iterdir())


def test_a_malformed_checkpoint_gets_a_hint_and_old_tracebacks_go(tmp_path, capsys):
    from ganbench.training import checkpoint

    argv, run_dir = _finished_run(tmp_path)
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "checkpoint.json"):
        (run_dir / name).unlink(missing_ok=True)
    checkpoint.save(run_dir, {"counters": {"steps": 1}})  # loads, matches its sidecar, holds no weights
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "not a ganbench checkpoint" in err and "--fresh" in err and "KeyError" not in err
    (run_dir / "traceback.txt").write_text("Traceback: an old failure\n")
    assert main([*argv, "--fresh"]) == 0
    assert not (run_dir / "traceback.txt").exists()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    (run_dir / "run.json").write_text("null")  # `run` itself reads the record first: it must not abort
    assert main(argv) == 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_names_that_break_encodings_and_mathtext(tmp_path, capsys):
    """A non-UTF-8 folder name and ``$…$`` in a path: the run, the leaderboard and the report all work."""
    folder = tmp_path / os.fsdecode(b"caf\xe9 $\\alpha_{$x")
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (8, 8), 50 * i + 20 * (cls == "b")).save(folder / cls / f"{i}.png")
    results = tmp_path / "results"
    assert main(["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "2steps", "--metrics=", "--eval-at=",
                 "--batch-size", "4", "--dataset", f"imagefolder:{folder}", "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "could not draw" not in err, err
    assert main(["leaderboard", str(results)]) == 0
    assert "caf\\udce9 $\\alpha_{$x" in (results / "leaderboard.csv").read_text(encoding="utf-8")
    assert (results / "report.html").is_file()


def test_an_ascii_terminal_gets_escapes_not_a_crash(tmp_path):
    import subprocess
    import sys

    root = _good_results(tmp_path)  # two seeds: the leaderboard prints "mean ± std"
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "ganbench.cli", "leaderboard", str(root)], capture_output=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert b"\\xb1" in done.stdout and b"Traceback" not in done.stderr


def test_dollar_signs_in_a_dataset_name_are_drawn_as_text(tmp_path):
    from ganbench.results.plots import render_invocation

    root = tmp_path / "results"
    dirs = [make_run(root, "dcgan", seed=0, rows=3, evaluations=2), make_run(root, "dcgan", seed=1, rows=3, evaluations=2)]
    record = json.loads((dirs[1] / "run.json").read_text())
    (dirs[1] / "run.json").write_text(json.dumps({**record, "dataset": "imagefolder:/data/$\\alpha_{$x"}))
    figures = render_invocation(dirs)  # the dataset joins the legend: two datasets
    assert {"quality_over_budget.png", "losses.png"} <= set(figures)
