"""The self-contained HTML report of runs the real runner wrote, checked as text and rendered in a real headless browser."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from ganbench.cli import main
from ganbench.errors import UsageError
from ganbench.results.report import render_report, write_report
from helpers import poison_curves, renamed

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def results(results_copy: Path) -> Path:
    """Real runs (dcgan, began, progressive; two seeds), plus a diverged one whose name is markup and a failed one."""
    dcgan = sorted((results_copy / "runs").glob("dcgan-*"))[0]
    hostile = renamed(dcgan, results_copy, "<img src=x onerror=alert(1)>")  # a name is a path part: no "/"
    poison_curves(hostile, from_row=2)
    record = json.loads((hostile / "run.json").read_text())
    record.update(status="diverged", diverged_at_step=4)
    (hostile / "run.json").write_text(json.dumps(record))
    bad = renamed(dcgan, results_copy, "vanilla")
    for name in ("curves.csv", "scores.json"):
        (bad / name).unlink()
    shutil.rmtree(bad / "samples")
    record = json.loads((bad / "run.json").read_text())
    record.update(status="failed", scores={}, error="RuntimeError: <b>boom</b> & more")
    (bad / "run.json").write_text(json.dumps(record))
    (bad / "traceback.txt").write_text("Traceback:\n  RuntimeError: <b>boom</b> & more\n")
    return results_copy


def test_report_is_self_contained_and_escaped(results):
    path = write_report(results)
    assert path == results / "report.html"
    text = path.read_text()
    # the leaderboard: one row per family, its status strings
    assert 'class="dataframe leaderboard"' in text
    for row in ("dcgan", "began", "progressive", "vanilla", "2/2 completed", "0/1 completed; seed 0 failed"):
        assert row in text
    # images are embedded, decode to PNGs, and nothing refers to a file or server
    uris = DATA_URI.findall(text)
    assert len(uris) >= 10
    for uri in uris:
        with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
            assert im.format == "PNG"
    assert not re.search(r'src="(?!data:)', text) and "<link" not in text and "file://" not in text
    # provenance
    environment = json.loads(next(results.glob("runs/dcgan-*/environment.json")).read_text())
    assert environment["torch"] in text and environment["device_name"] in text
    # text from runs is escaped, never markup
    assert "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<b>boom</b>" not in text and "&lt;b&gt;boom&lt;/b&gt; &amp; more" in text
    assert "M_global" in text  # the BEGAN convergence section


def test_report_out_and_cli(results, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file() and not (results / "report.html").exists()  # only the page is written


def test_report_reuses_fresh_run_plots(results):
    from ganbench.results.plots import plot_run

    run = next((results / "runs").glob("dcgan*s0*"))
    plot_run(run)
    marker = (run / "plots" / "losses.png").read_bytes()
    assert base64.b64encode(marker).decode() in render_report(results)


def test_report_uses_combined_figures_it_is_given(results):
    buf = io.BytesIO()
    Image.new("RGB", (7, 5), (1, 2, 3)).save(buf, format="PNG")  # unlike anything the report would draw
    marker = base64.b64encode(buf.getvalue()).decode()
    assert marker not in render_report(results)
    assert marker in render_report(results, combined={"quality_over_budget.png": buf.getvalue()})


def test_no_runs_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="No runs found"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    report = write_report(results)
    shot = tmp_path / "shot.png"
    done = _chromium([f"--screenshot={shot}", "--window-size=1200,2000", report.resolve().as_uri()], tmp_path / "p1")
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50, "screenshot is blank"
    dom = _chromium(["--dump-dom", report.resolve().as_uri()], tmp_path / "p2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table border="0" class="dataframe leaderboard">' in dom.stdout or 'class="dataframe leaderboard"' in dom.stdout
    assert "<td>dcgan</td>" in dom.stdout and "2/2 completed" in dom.stdout
    assert "<img src=x" not in dom.stdout  # escaped text stays text in the parsed DOM
    assert len(DATA_URI.findall(dom.stdout)) >= 10
