"""Leaderboards are pandas views over run records, aggregated over seeds."""

import re

import pandas as pd
import pytest

from ganbench.cli import main
from ganbench.results.leaderboard import compile_leaderboard, load_records, write_leaderboard
from ganbench.results.store import write_json
from helpers import make_record


def record(family, seed, status="completed", loss=1.0, ips=100.0, **kw):
    return make_record(
        family, seed, budget="1m", status=status, steps=10, images=640, train_seconds=6.4, images_per_second=ips,
        device="cpu", params_generator=5, params_discriminator=7, losses={"loss_g": loss}, **kw,
    )


def test_aggregates_over_seeds_with_mean_and_std():
    board = compile_leaderboard([record("a", 0, loss=1.0), record("a", 1, loss=3.0), record("b", 0, loss=2.0)])
    a = board.set_index("family").loc["a"]
    assert a["seeds"] == 2 and a["loss:loss_g"] == 2.0
    assert a["loss:loss_g:std"] == pytest.approx(2**0.5)
    assert pd.isna(board.set_index("family").loc["b", "loss:loss_g:std"])


def test_unfinished_runs_are_shown_but_not_averaged():
    board = compile_leaderboard([
        record("a", 0, loss=1.0), record("a", 1, status="diverged", loss=float("nan"), diverged_at_step=7),
    ])
    row = board.iloc[0]
    assert row["status"] == "1/2 completed; seed 1 diverged@7"
    assert row["loss:loss_g"] == 1.0 and row["seeds"] == 2


def test_rows_are_per_family_objective_dataset_budget():
    recs = [record("a", 0), record("a", 1)]
    other_budget = record("a", 2)
    other_budget.budget = "2m"
    board = compile_leaderboard(recs + [other_budget])
    assert sorted(board["budget"]) == ["1m", "2m"]


def test_leaderboard_command_reads_a_results_directory(tmp_path, capsys):
    for r in (record("a", 0, ips=100.0), record("a", 1, ips=300.0)):
        write_json(tmp_path / "runs" / r.run_id / "run.json", r.as_dict())
    assert main(["leaderboard", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "200.0" in out and "2/2 completed" in out
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert csv.loc[0, "img_per_s"] == 200.0
    assert "| a " in (tmp_path / "leaderboard.md").read_text()
    assert len(load_records(tmp_path)) == 2


def test_empty_results_directory_says_how_to_fill_it(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path)]) == 0
    assert "No runs found" in capsys.readouterr().out


def test_write_leaderboard_round_trips(tmp_path):
    board = compile_leaderboard([record("a", 0), record("b", 0)])
    paths = write_leaderboard(board, tmp_path)
    back = pd.read_csv(paths["csv"])
    assert list(back["family"]) == ["a", "b"]


@pytest.mark.parametrize("mixed, keys", [
    ("extractors", ("fid500[lenet-digits-aaaa]", "fid500[inception-v3-compat]")),
    ("sample counts", ("fid500[lenet-digits-aaaa]", "fid10k[lenet-digits-aaaa]")),
])
def test_rank_by_refuses_to_rank_scores_of_different_protocols(tmp_path, capsys, mixed, keys):
    """FIDs from two extractors, or from 500 and 10k samples, are not comparable: ranking them together is refused."""
    for seed, key in enumerate(keys):
        write_json(tmp_path / "runs" / f"r{seed}" / "run.json",
                   record(f"fam{seed}", 0, scores={key: 10.0 + seed}).as_dict())
    assert main(["leaderboard", str(tmp_path), "--rank-by", "fid"]) == 2
    err = capsys.readouterr().err
    assert "--rank-by 'fid' matches 2 columns" in err and all(f"score:{k}" in err for k in keys), err
    # one protocol named in full ranks the rows that have it
    assert main(["leaderboard", str(tmp_path), "--rank-by", f"score:{keys[0]}"]) == 0


def _headers(text: str, fmt: str) -> list[str]:
    if fmt == "md":
        return [cell.strip() for cell in text.splitlines()[0].strip("|").split("|")]
    head = text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return re.findall(r"<th[^>]*>(.*?)</th>", head)


def test_columns_empty_in_every_row_are_hidden_in_every_rendering_but_kept_in_the_data(tmp_path, capsys):
    from ganbench.results.report import write_report
    from ganbench.results.store import write_json

    quiet = ["speed", "hparams", "pack"]
    paths = write_leaderboard(compile_leaderboard([record("a", 0), record("b", 0)]), tmp_path / "plain")
    for fmt in ("md", "html"):
        shown = _headers(paths[fmt].read_text(), fmt)
        assert "family" in shown and not set(quiet) & set(shown), (fmt, shown)
    assert set(quiet) <= set(pd.read_csv(paths["csv"]).columns)
    assert set(quiet) <= set(pd.read_json(paths["json"]).columns)

    runs = [record("a", 0), record("b", 0, hparams="lr=0.001")]  # one row has a value: the column is back
    paths = write_leaderboard(compile_leaderboard(runs), tmp_path / "tuned")
    for fmt in ("md", "html"):
        shown = _headers(paths[fmt].read_text(), fmt)
        assert "hparams" in shown and not {"speed", "pack"} & set(shown), (fmt, shown)
    for r in runs:
        write_json(tmp_path / "tuned" / "runs" / r.run_id / "run.json", r.as_dict())
    report = write_report(tmp_path / "tuned").read_text()
    shown = _headers(report.split('dataframe leaderboard', 1)[1], "html")
    assert "hparams" in shown and not {"speed", "pack"} & set(shown), shown
    assert main(["leaderboard", str(tmp_path / "tuned")]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert "hparams" in header and not {"speed", "pack"} & set(header), header
