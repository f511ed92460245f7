"""A 'best' checkpoint is chosen on held-out samples and reported with scores the choice never saw."""

from __future__ import annotations

import csv
import json

import torch

from ganbench.cli import main
from ganbench.results.leaderboard import compile_leaderboard, load_records, rank_column
from ganbench.scoring.selection import best_of


def evaluation(fraction: float, regular: float, heldout: float) -> dict:
    return {"fraction": fraction, "step": int(fraction * 100), "kimg": fraction * 6.4,
            "fid100[x]": regular, "heldout:fid50[x]": heldout, "heldout:isc50_std[x]": 0.1}


def test_the_choice_is_made_on_held_out_scores_and_reports_the_regular_ones():
    evaluations = [evaluation(0.25, 90.0, 95.0), evaluation(0.5, 60.0, 41.0), evaluation(0.75, 40.0, 44.0),
                   evaluation(1.0, 55.0, 50.0)]
    best = best_of(evaluations, "fid")
    # the held-out FID is lowest at 50 %, so that is the checkpoint, although the regular FID is lowest at 75 %
    assert best["fraction"] == 0.5 and best["step"] == 50
    assert best["scores"] == {"fid100[x]": 60.0}  # the regular samples' score, no held-out key
    assert best["selected_by"] == "fid50[x]" and best["selection_value"] == 41.0


def test_higher_is_better_metrics_select_the_maximum_and_ties_keep_the_earlier_point():
    evaluations = [{"fraction": f, "step": s, "kimg": 0.0, "isc100[x]": r, "heldout:isc50[x]": h}
                   for f, s, r, h in ((0.5, 5, 3.0, 4.0), (0.75, 7, 3.5, 4.0), (1.0, 10, 3.9, 2.0))]
    assert best_of(evaluations, "isc")["fraction"] == 0.5
    assert best_of([{"fraction": 1.0, "step": 1, "kimg": 0.0, "isc100[x]": 2.0}], "isc") is None  # nothing held out


def test_select_best_end_to_end(tmp_path, capsys):
    code = main(["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "16steps", "--results", str(tmp_path), "--metrics", "fid",
                 "--eval-samples", "200", "--eval-samples-intermediate", "100", "--eval-at", "0.25,0.5,0.75",
                 "--select-best", "fid"])
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    evaluations = json.loads((run_dir / "scores.json").read_text())
    # every evaluation was also scored on held-out samples, at one sample count for all fractions
    held = [{k: v for k, v in e.items() if k.startswith("heldout:")} for e in evaluations]
    assert all(len(h) == 1 and next(iter(h)).startswith("heldout:fid100[") for h in held)
    assert not any(k.startswith("heldout:") for k in record["scores"])
    assert sorted(k.split("[")[0] for k in record["scores"]) == ["div200_classes", "div200_spread", "fid200"]
    # the record's best is the evaluation with the best held-out FID, reported with its regular scores
    chosen = min(evaluations, key=lambda e: next(iter(v for k, v in e.items() if k.startswith("heldout:"))))
    best = record["best"]
    assert best["fraction"] == chosen["fraction"]
    assert best["scores"] == {k: v for k, v in chosen.items() if k not in ("fraction", "step", "kimg")
                              and not k.startswith("heldout:")}
    assert json.loads((run_dir / "best.json").read_text())["fraction"] == best["fraction"]
    # best.pt holds the weights at that point: the final weights exactly when the final evaluation won
    best_weights = torch.load(run_dir / "best.pt", weights_only=True)["generator"]
    final_weights = torch.load(run_dir / "checkpoint.pt", weights_only=True)["networks"]["generator"]
    same = all(torch.equal(best_weights[k], final_weights[k]) for k in final_weights)
    assert same == (best["fraction"] == 1.0)
    # the leaderboard shows it, labelled, next to the final scores, and ranks by the final ones only
    header = next(csv.reader((tmp_path / "leaderboard.csv").open()))
    assert any(h.startswith("score:fid") and h.endswith("@best") for h in header) and "best_at" in header
    board = compile_leaderboard(load_records(tmp_path))
    assert rank_column(board, "fid").startswith("score:fid200[") and "@" not in rank_column(board, "fid")
    assert "best*: at the evaluation chosen on held-out samples" in capsys.readouterr().out


def test_select_best_needs_a_computed_metric(tmp_path, capsys):
    code = main(["run", "--device", "cpu", "--plugins", "vanilla", "--budget", "2steps", "--results", str(tmp_path), "--metrics", "fid",
                 "--select-best", "kid"])
    assert code == 2
    assert "--select-best kid names a metric that is not computed" in capsys.readouterr().err
