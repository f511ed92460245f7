"""benchmarks/published/pacgan_table1.py: the toy leaderboards against PacGAN's Table 1, and the issue's verdict."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("pacgan_table1", ROOT / "benchmarks" / "published" / "pacgan_table1.py")
table1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table1)


def _row(dataset: str, pack, shift: float = 0.0, half: float = 0.5) -> dict:
    published = table1.TABLE1[(dataset, 1 if pack in ("", None) else pack)]
    row = {"dataset": dataset, "pack": pack, "budget": "400000steps"}
    for metric, (mean, _) in published.items():
        row |= {f"score:{metric}2500": mean + shift, f"score:{metric}2500:ci95": half, f"score:{metric}2500:n": 10}
    return row


def test_the_verdict_widens_the_published_error_by_our_half_width():
    assert table1.agrees(6.3, 0.0, 6.3, 0.5)
    assert table1.agrees(7.0, 0.3, 6.3, 0.5) and not table1.agrees(7.2, 0.3, 6.3, 0.5)
    assert table1.agrees(6.7, math.nan, 6.3, 0.5) and not table1.agrees(6.9, math.nan, 6.3, 0.5)  # one seed


def test_rows_follow_table_1_and_skip_configurations_it_does_not_have():
    on_target = table1.rows([_row("ring", ""), _row("grid", 2)])
    assert len(on_target) == 6 and all(line.endswith("| yes |") for line in on_target)
    assert "| ring | GAN | modes | 6.3 ± 0.5 |" in on_target[0] and "| grid | PacGAN2 |" in on_target[3]
    far = table1.rows([_row("ring", "", shift=5.0)])
    assert all(line.endswith("| no |") for line in far)
    assert table1.rows([{**_row("ring", ""), "pack": 3}]) == []  # PacGAN3 is not among the suites' rows


def test_it_reads_the_committed_toy_results(capsys):
    assert table1.main([str(ROOT / "results" / "toys" / "ring")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 6 and {line.split(" | ")[1] for line in lines[2:]} == {"GAN", "PacGAN2"}
