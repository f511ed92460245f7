"""One self-contained HTML page per results directory.

``write_report(results_dir)`` writes ``results_dir/report.html``: provenance,
the leaderboard, the combined figures (quality over the budget, losses,
BEGAN's M_global, final sample grids) and one section per run (status,
counters, scores, its figures and its sample grids at each budget fraction).
Every image is embedded as a base64 ``data:`` URI, so the page opens from
disk with no server and can be mailed as one file. Every piece of text that
comes from a run (names, errors, tracebacks) is HTML-escaped.

The report reads run directories only: no plugin is loaded and nothing is
trained or scored. Per-run figures that ``plot_run`` already wrote are reused
when they are newer than the run's data; otherwise, and for the combined
figures, they are drawn in memory. The only file written is the HTML page.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ganbench import __version__
from ganbench.scoring.diversity import COLLAPSE_RULE
from ganbench.errors import UsageError
from ganbench.results.leaderboard import compile_leaderboard, shown_frame
from ganbench.results.plots import M_GLOBAL_CAPTION, final_grid, logs_m_global, render_invocation, render_run
from ganbench.results.records import RecordError, RunRecord, fraction_label
from ganbench.results.store import check_writable, read_json, write_text

RUN_MARKERS = ("run.json", "config.json", "curves.csv")
PROVENANCE_KEYS = ("ganbench", "torch", "torchvision", "torch_fidelity", "python", "cuda", "device", "device_name",
                   "platform", "git_commit")
RUN_PLOTS = ("losses.png", "convergence.png", "quality.png")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def find_run_dirs(results_dir: Path) -> list[Path]:
    """Run directories under ``results_dir/runs`` (or ``results_dir`` itself), as ``load_records`` looks for them."""
    root = Path(results_dir)
    for base in (root / "runs", root):
        dirs = sorted(d for d in base.glob("*/") if d.is_dir() and any((d / m).is_file() for m in RUN_MARKERS))
        if dirs:
            return dirs
    return []


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes | None, alt: str, cls: str = "plot") -> str:
    if not png:
        return ""
    return f'<img class="{cls}" alt="{esc(alt)}" src="{_data_uri(png)}">'


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_bytes(path: Path | None, run_dir: Path, png: bool = True) -> bytes | None:
    """The bytes of a file the report may embed, else None.

    A run directory may be shared or planted: only a regular file (not a
    symbolic link) that resolves inside ``run_dir`` is read, and an image must
    really be a PNG. Otherwise a link to a secret would be mailed around inside
    the report.
    """
    if path is None:
        return None
    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(Path(run_dir).resolve()):
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if png and not data.startswith(PNG_SIGNATURE):
        return None
    return data


def _run_figures(run_dir: Path) -> dict[str, bytes]:
    """The run's figures: from ``plots/`` when newer than its data, else drawn now (in memory)."""
    inputs = [run_dir / n for n in ("run.json", "curves.csv", "scores.json")]
    newest = max((p.stat().st_mtime for p in inputs if p.is_file()), default=0.0)
    existing = {n: run_dir / "plots" / n for n in RUN_PLOTS if (run_dir / "plots" / n).is_file()}
    if existing and all(p.stat().st_mtime >= newest for p in existing.values()):
        loaded = {n: _read_bytes(p, run_dir) for n, p in existing.items()}
        if all(loaded.values()):
            return {n: b for n, b in loaded.items() if b}
    return render_run(run_dir)


# -- sections -------------------------------------------------------------------------------------


def _provenance(run_dirs: Sequence[Path]) -> str:
    values: dict[str, Counter[str]] = {k: Counter() for k in PROVENANCE_KEYS}
    plugins: dict[str, set[str]] = {}
    for d in run_dirs:
        env = read_json(d / "environment.json")
        if not isinstance(env, dict):
            continue
        for k in PROVENANCE_KEYS:
            if env.get(k) is not None:
                values[k][str(env[k])] += 1
        if isinstance(env.get("plugins"), dict):
            for dist, version in env["plugins"].items():
                plugins.setdefault(str(dist), set()).add(str(version))
    rows = []
    for k, counts in values.items():
        if not counts:
            continue
        shown = "; ".join(f"{esc(v)}" + (f" ({n} runs)" if len(counts) > 1 else "") for v, n in counts.most_common())
        rows.append(f"<tr><th>{esc(k)}</th><td>{shown}</td></tr>")
    if plugins:
        shown = ", ".join(f"{esc(d)} {esc('/'.join(sorted(v)))}" for d, v in sorted(plugins.items()))
        rows.append(f"<tr><th>plugins</th><td>{shown}</td></tr>")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows.append(f"<tr><th>report</th><td>written {esc(now)} by ganbench {esc(__version__)}</td></tr>")
    if len(rows) == 1:
        rows.insert(0, '<tr><th>environment</th><td class="muted">no environment.json found</td></tr>')
    return '<table class="kv">' + "".join(rows) + "</table>"


def _leaderboard(records: Sequence[RunRecord]) -> str:
    board = compile_leaderboard(records)
    if board.empty:
        return '<p class="muted">No run records (run.json) found.</p>'
    table = shown_frame(board).to_html(index=False, border=0, classes="leaderboard", na_rep="", escape=True)
    return f'<div class="scroll">{table}</div>'


def _status_badge(status: str) -> str:
    cls = {"completed": "ok", "diverged": "bad", "failed": "bad"}.get(status, "warn")
    return f'<span class="status {cls}">{esc(status)}</span>'


def _badges(status: str, record: RunRecord | None) -> str:
    """The status badge, and a 'collapsed' one when the run's final samples lost their diversity."""
    badge = _status_badge(status)
    if record is not None and record.collapsed:
        badge += f' <span class="status bad" title="{esc(record.collapse_note)}">collapsed</span>'
    return badge


def _m_global_note(run_dirs: Sequence[Path], records: dict[Path, RunRecord]) -> str:
    """What M_global measures, and which runs that logged it collapsed whatever their curve shows."""
    collapsed = [records[d] for d in run_dirs if d in records and records[d].collapsed and logs_m_global(d)]
    note = f'<p class="note">{esc(M_GLOBAL_CAPTION)}</p>'
    if collapsed:
        items = "".join(f"<li>{esc(r.family)}:{esc(r.objective)} seed {esc(r.seed)}: {esc(r.collapse_note)}</li>"
                        for r in collapsed)
        note += f'<p class="note bad">Samples collapsed (flagged next to the curve too), whatever M_global shows:</p><ul>{items}</ul>'
    return note


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "NaN"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _kv_table(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in items
                   if v not in (None, "", {}))
    return f'<table class="kv">{rows}</table>' if rows else ""


def _grid_caption(path: Path) -> str:
    stem = path.stem
    if stem.startswith("frac") and stem[4:].isdigit():
        return f"{int(stem[4:])}% of budget"
    return stem


def _sample_strip(run_dir: Path) -> str:
    samples = run_dir / "samples"
    paths = sorted(samples.glob("frac*.png")) + ([samples / "final.png"] if (samples / "final.png").is_file() else [])
    figures = []
    for p in paths:
        data = _read_bytes(p, run_dir)
        if data:
            figures.append(f'<figure>{_img(data, f"samples {p.stem}", "grid")}<figcaption>{esc(_grid_caption(p))}'
                           "</figcaption></figure>")
    if not figures:
        return '<p class="muted">No sample grids.</p>'
    return '<div class="gallery">' + "".join(figures) + "</div>"


def _run_section(index: int, run_dir: Path, record: RunRecord | None) -> str:
    config = read_json(run_dir / "config.json")
    data = record.as_dict() if record else (config if isinstance(config, dict) else {})
    status = record.status if record else "unknown (no run.json)"
    title = f"{data.get('family', '?')}:{data.get('objective', '?')} seed {data.get('seed', '?')}"
    counters = [
        ("run id", run_dir.name), ("dataset", data.get("dataset")), ("budget", data.get("budget")),
        ("steps", data.get("steps")), ("images", data.get("images")), ("train seconds", data.get("train_seconds")),
        ("eval seconds", data.get("eval_seconds")), ("images / second", data.get("images_per_second")),
        ("generator parameters", data.get("params_generator")),
        ("discriminator parameters", data.get("params_discriminator")), ("device", data.get("device")),
        ("diverged at step", data.get("diverged_at_step")), ("resumed from step", data.get("resumed_from_step")),
        ("started", data.get("started_at")), ("finished", data.get("finished_at")), ("error", data.get("error")),
        ("sample diversity", ("COLLAPSED: " if data.get("collapsed") else "") + (data.get("collapse_note") or "")),
    ]
    parts = [f'<section class="run" id="run-{index}"><h3>{esc(title)} {_badges(status, record)}</h3>',
             '<div class="cols">', _kv_table(counters)]
    scores = data.get("scores") or {}
    losses = data.get("losses") or {}
    if scores:
        parts.append("<div><h4>final scores</h4>" + _kv_table(scores.items()) + "</div>")
    best = data.get("best")
    if best:  # chosen on held-out samples; its scores come from the regular samples (ganbench.scoring.selection)
        chosen = [("at", f"{fraction_label(float(best['fraction']))} of the budget, step {best.get('step')}"),
                  ("chosen by", f"held-out {best.get('selected_by')} = {_fmt(best.get('selection_value'))}")]
        parts.append("<div><h4>checkpoint selected on held-out samples</h4>"
                     + _kv_table([*chosen, *best.get("scores", {}).items()]) + "</div>")
    if losses:
        parts.append("<div><h4>final losses</h4>" + _kv_table(losses.items()) + "</div>")
    parts.append("</div>")
    figures = _run_figures(run_dir)
    for name in RUN_PLOTS:
        if name in figures:
            parts.append(_img(figures[name], f"{title} {name[:-4]}"))
    if not figures:
        parts.append('<p class="muted">No curves or scores recorded.</p>')
    parts.append("<h4>sample grids (fixed latent batch)</h4>" + _sample_strip(run_dir))
    tb = _read_bytes(run_dir / "traceback.txt", run_dir, png=False)
    if tb:
        text = tb.decode("utf-8", errors="replace")[-6000:]
        parts.append(f"<details><summary>traceback</summary><pre>{esc(text)}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _final_gallery(run_dirs: Sequence[Path], records: dict[Path, RunRecord]) -> str:
    figures = []
    for i, d in enumerate(run_dirs):
        path, note = final_grid(d)
        data = _read_bytes(path, d)
        r = records.get(d)
        label = f"{r.family}:{r.objective} s{r.seed}" if r else d.name
        status = r.status if r else "unknown"
        caption = f'<a href="#run-{i}">{esc(label)}</a> {_badges(status, r)}'
        if note != "final":
            caption += f'<br><span class="muted">{esc(note)}</span>'
        body = _img(data, f"final samples {label}", "grid") if data else '<div class="muted nogrid">no sample grid</div>'
        figures.append(f"<figure>{body}<figcaption>{caption}</figcaption></figure>")
    return '<div class="gallery">' + "".join(figures) + "</div>" if figures else ""


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;
color:#222;background:#fff;line-height:1.4}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-bottom:.4em} h4{margin:.6em 0 .3em}
table{border-collapse:collapse;font-size:13px}
table.leaderboard th,table.leaderboard td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
table.leaderboard th{background:#f0f3f7;position:sticky;top:0}
table.leaderboard tr:nth-child(even) td{background:#fafafa}
table.kv th{text-align:left;padding:2px 12px 2px 0;font-weight:600;color:#555;vertical-align:top}
table.kv td{padding:2px 0;word-break:break-word}
.scroll{overflow-x:auto}
img.plot{max-width:100%;display:block;margin:.8em 0}
img.grid{image-rendering:pixelated;width:192px;height:auto;border:1px solid #ccc}
.gallery{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.gallery figure{margin:0;text-align:center;font-size:12px;max-width:220px}
.cols{display:flex;flex-wrap:wrap;gap:40px}
.status{font-size:12px;padding:1px 7px;border-radius:9px;color:#fff;vertical-align:middle}
.status.ok{background:#2e7d32}.status.bad{background:#c62828}.status.warn{background:#ef6c00}
p.note.bad{color:#c62828;font-weight:600}
.muted{color:#777} .nogrid{width:192px;height:192px;border:1px dashed #bbb;display:flex;align-items:center;
justify-content:center}
section.run{border-top:1px solid #e3e3e3;padding-top:.5em;margin-top:1.5em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}
nav ul{columns:2;font-size:13px}
"""


def render_report(results_dir: Path, combined: dict[str, bytes] | None = None) -> str:
    """The report as an HTML string (nothing is written).

    ``combined`` are the combined figures of exactly the runs in ``results_dir``
    when the caller has drawn them already (``ganbench run`` has); else they are drawn here.
    """
    results_dir = Path(results_dir)
    run_dirs = find_run_dirs(results_dir)
    if not run_dirs:
        raise UsageError(f"No runs found under {results_dir}. Train some with `ganbench run --results {results_dir}`.")
    by_dir: dict[Path, RunRecord] = {}
    for d in run_dirs:
        if (d / "run.json").is_file():
            try:
                by_dir[d] = RunRecord.read(d / "run.json")
            except RecordError as exc:
                print(f"warning: skipped unreadable run record {exc}", file=sys.stderr)
    statuses = Counter(by_dir[d].status if d in by_dir else "unknown" for d in run_dirs)
    summary = ", ".join(f"{n} {esc(s)}" for s, n in statuses.most_common())
    records = [by_dir[d] for d in run_dirs if d in by_dir]
    if combined is None:
        combined = render_invocation(run_dirs)
    title = f"ganbench report: {results_dir.resolve().name}"

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="muted">{esc(str(results_dir.resolve()))} · {len(run_dirs)} runs: {summary}</p>',
        '<h2 id="provenance">Provenance</h2>', _provenance(run_dirs),
        '<h2 id="leaderboard">Leaderboard</h2>',
        '<p class="muted">Final-checkpoint scores as mean ± standard deviation over seeds, with the 95 % '
        'confidence interval of the mean in brackets; only completed runs enter the means. Columns named '
        '…@50% hold the evaluation at that fraction of the budget. <b>collapsed</b> marks runs whose final '
        f'samples lack diversity ({esc(COLLAPSE_RULE)}; docs/metrics.md): their scores describe a broken '
        'run, not the family.</p>',
        _leaderboard(records),
    ]
    sections = (("quality_over_budget.png", "Quality over the budget"), ("losses.png", "Losses"),
                ("m_global.png", "BEGAN convergence (M_global)"))
    for name, heading in sections:
        if name in combined:
            out += [f'<h2 id="{name[:-4]}">{esc(heading)}</h2>', _img(combined[name], heading)]
            if name == "m_global.png":
                out.append(_m_global_note(run_dirs, by_dir))
    out += ['<h2 id="samples">Final samples</h2>', _final_gallery(run_dirs, by_dir)]
    out.append('<h2 id="runs">Runs</h2><nav><ul>')
    for i, d in enumerate(run_dirs):
        status = by_dir[d].status if d in by_dir else "unknown"
        out.append(f'<li><a href="#run-{i}">{esc(d.name)}</a> {_badges(status, by_dir.get(d))}</li>')
    out.append("</ul></nav>")
    out += [_run_section(i, d, by_dir.get(d)) for i, d in enumerate(run_dirs)]
    out.append("</body></html>\n")
    return "\n".join(out)


def write_report(results_dir: Path, out: Path | None = None, combined: dict[str, bytes] | None = None) -> Path:
    """Write the self-contained HTML report (default ``results_dir/report.html``); return its path."""
    results_dir = Path(results_dir)
    path = Path(out) if out is not None else results_dir / "report.html"
    check_writable(path.parent, "the report", "Choose another place with --out FILE.")  # before drawing anything
    write_text(path, render_report(results_dir, combined))
    return path


__all__ = ["find_run_dirs", "render_report", "write_report"]
