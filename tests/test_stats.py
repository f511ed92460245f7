"""Leaderboard statistics over seeds: mean, std, Student-t 95 % intervals, ranks with ties, exports."""

import json
import math
from html.parser import HTMLParser

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from ganbench.cli import main
from ganbench.results.leaderboard import compile_leaderboard, display_frame, write_leaderboard
from ganbench.results.stats import intervals_overlap, summarize, t_halfwidth
from ganbench.results.store import write_json
from helpers import make_record

FID = "fid2k[lenet]"


def rec(family, seed, fid=None, isc=None, objective="nonsaturating", status="completed", budget="100steps"):
    scores = {}
    if fid is not None:
        scores[FID] = fid
    if isc is not None:
        scores["isc2k[lenet]"] = isc
        scores["isc2k_std[lenet]"] = 0.1  # the within-run split spread torch-fidelity reports
    return make_record(
        family, seed, run_id=f"{family}-{objective}-{budget}-{seed}", objective=objective, budget=budget, status=status, steps=100, images=6400, train_seconds=10.0, eval_seconds=2.0,
        images_per_second=640.0, device="cpu", params_generator=5, params_discriminator=7, scores=scores,
    )


def test_summary_matches_scipy_t_interval():
    values = [10.0, 12.0, 14.0]
    s = summarize(values)
    assert s.mean == 12.0 and s.n == 3 and s.std == pytest.approx(2.0)
    assert s.ci95 == pytest.approx(scipy_stats.t.ppf(0.975, 2) * 2.0 / math.sqrt(3))
    assert s.ci95 == pytest.approx(4.9683, abs=1e-4)  # 4.3027 * 2 / sqrt(3)
    assert (s.low, s.high) == pytest.approx((12 - s.ci95, 12 + s.ci95))


def test_one_seed_has_no_spread_and_non_finite_values_are_ignored():
    one = summarize([3.0])
    assert one.mean == 3.0 and one.n == 1 and math.isnan(one.std) and math.isnan(one.ci95)
    assert summarize([1.0, float("nan"), None, 3.0]).n == 2
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)
    assert math.isnan(t_halfwidth(1.0, 1))


def test_interval_overlap():
    assert intervals_overlap(10, 1, 11.5, 1)
    assert not intervals_overlap(10, 1, 12.5, 1)
    assert not intervals_overlap(10, float("nan"), 10, 1)


def test_board_has_mean_std_ci_and_n_per_score():
    board = compile_leaderboard([rec("a", 0, fid=10.0), rec("a", 1, fid=12.0), rec("a", 2, fid=14.0),
                                 rec("b", 0, fid=20.0)])
    a, b = board.set_index("family").loc["a"], board.set_index("family").loc["b"]
    col = f"score:{FID}"
    assert a[col] == 12.0 and a[f"{col}:std"] == pytest.approx(2.0) and a[f"{col}:n"] == 3
    assert a[f"{col}:ci95"] == pytest.approx(4.9683, abs=1e-4)
    assert b[f"{col}:n"] == 1 and math.isnan(b[f"{col}:std"]) and math.isnan(b[f"{col}:ci95"])
    for column in ("steps", "images", "train_s", "img_per_s", "eval_s", "params_g", "params_d", "device"):
        assert column in board
    assert "[7.032, 16.97]" in display_frame(board).set_index("family").loc["a", col]


def test_failed_seeds_do_not_count_towards_n():
    board = compile_leaderboard([rec("a", 0, fid=10.0), rec("a", 1, fid=float("nan"), status="diverged")])
    assert board.loc[0, f"score:{FID}:n"] == 1 and board.loc[0, "seeds"] == 2


def three(family, mean, spread, **kw):
    return [rec(family, s, fid=mean + d, **kw) for s, d in enumerate((-spread, 0.0, spread))]


def test_rank_by_prefix_lower_is_better_with_ties():
    # a: 10 ± tight, b: 10.5 overlaps a, c: 30 clearly worse, d: no completed run
    records = three("a", 10.0, 0.5) + three("b", 10.5, 0.5) + three("c", 30.0, 0.5) + [
        rec("d", 0, fid=float("nan"), status="failed")]
    board = compile_leaderboard(records, rank_by="fid")
    assert list(board["family"]) == ["a", "b", "c", "d"]
    assert list(board["rank"].astype("float").fillna(-1)) == [1, 1, 3, -1]
    assert list(board["tied_with"]) == ["", "a:nonsaturating", "", ""]
    assert list(display_frame(board)["rank"]) == ["1=", "1=", "3", ""]


def test_rank_higher_is_better_for_isc_and_single_seed_never_tied():
    records = [rec("a", 0, isc=2.0), rec("b", 0, isc=2.1)]
    board = compile_leaderboard(records, rank_by="isc")
    assert list(board["family"]) == ["b", "a"]
    assert list(board["rank"]) == [1, 2] and list(board["tied_with"]) == ["", ""]


def test_separated_intervals_are_not_tied():
    board = compile_leaderboard(three("a", 10.0, 0.1) + three("b", 11.0, 0.1), rank_by="fid")
    assert list(board["rank"]) == [1, 2] and list(display_frame(board)["rank"]) == ["1", "2"]


class _TableReader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.external, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""
        if attrs.get("src") or (tag == "link" and attrs.get("href")):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_every_export_reads_back(tmp_path):
    board = compile_leaderboard(three("a", 10.0, 0.5) + three("b", 20.0, 0.5), rank_by="fid")
    paths = write_leaderboard(board, tmp_path)
    assert set(paths) == {"csv", "md", "json", "html"}
    csv = pd.read_csv(paths["csv"])
    assert list(csv["family"]) == ["a", "b"] and list(csv["rank"]) == [1, 2]
    assert csv.loc[0, f"score:{FID}:ci95"] == pytest.approx(board.loc[0, f"score:{FID}:ci95"])
    records = json.loads(paths["json"].read_text())
    assert records[1]["family"] == "b" and records[0][f"score:{FID}"] == pytest.approx(10.0)
    back = pd.read_json(paths["json"], orient="records")
    assert list(back["family"]) == ["a", "b"]
    md = paths["md"].read_text().splitlines()
    assert md[0].startswith("|") and any("| a " in line or "| 1 " in line for line in md[2:])
    reader = _TableReader()
    reader.feed(paths["html"].read_text())
    header, *body = reader.rows
    assert "family" in header and "rank" in header and len(body) == 2
    assert body[0][header.index("family")] == "a" and body[0][header.index("rank")] == "1"
    assert reader.external == []  # self-contained: no external scripts, images or stylesheets


def test_leaderboard_command_ranks_and_writes_all_formats(tmp_path, capsys):
    for r in three("a", 10.0, 0.5) + three("b", 10.2, 0.5):
        write_json(tmp_path / "runs" / r.run_id / "run.json", r.as_dict())
    assert main(["leaderboard", str(tmp_path), "--rank-by", "fid"]) == 0
    out = capsys.readouterr().out
    assert "1=" in out and "leaderboard.html" in out
    assert (tmp_path / "leaderboard.json").exists() and (tmp_path / "leaderboard.html").exists()
