"""The leaderboard as printed: short score names, one extractor note, quality-over-budget tables."""

from ganbench.results.leaderboard import compile_leaderboard
from ganbench.results.records import RunRecord
from ganbench.results.terminal import terminal_text
from helpers import make_record

EXT = "lenet-digits-a47c01eb"


def rec(family: str, seed: int, fids: dict[str, float], final: float, extractor: str = EXT) -> RunRecord:
    return make_record(
        family, seed, budget="40s", steps=100, images=6400, device="cpu", losses={"loss_d": 0.5},
        scores={f"fid10k[{extractor}]": final, f"isc10k[{extractor}]": 3.0, f"isc10k_std[{extractor}]": 0.1},
        scores_at={label: {f"fid2k[{extractor}]": value, f"isc2k[{extractor}]": 2.0} for label, value in fids.items()},
    )


def test_scores_are_short_and_intermediate_points_get_their_own_table():
    board = compile_leaderboard([
        rec("dcgan", 0, {"25%": 80.0, "50%": 40.0}, 20.0),
        rec("dcgan", 1, {"25%": 90.0, "50%": 50.0}, 30.0),
        rec("vanilla", 0, {"25%": 120.0, "50%": 100.0}, 90.0),
    ])
    text = terminal_text(board)
    main, *rest = text.split("\n\n")
    header = main.splitlines()[0].split()
    assert {"fid10k", "isc10k", "isc10k_std"} <= set(header)
    assert not any("@" in h or "[" in h for h in header)  # intermediate columns are not in the main table
    assert f"feature extractor {EXT}" in text
    assert "loss_d" not in text and "device" not in header and "device: cpu" in text  # stated once, not per row
    assert "95 % confidence interval" in text
    (fid_table,) = [t for t in rest if t.startswith("fid10k over the budget")]
    assert "lower is better" in fid_table and "measured as fid2k" in fid_table
    lines = fid_table.splitlines()
    assert lines[1].split() == ["family", "objective", "25%", "50%", "100%"]
    assert lines[2].split() == ["dcgan", "nonsaturating", "85", "45", "25"]  # means over the two seeds
    assert lines[3].split() == ["vanilla", "nonsaturating", "120", "100", "90"]
    (isc_table,) = [t for t in rest if t.startswith("isc10k over the budget")]
    assert "higher is better" in isc_table
    assert not any(t.startswith("isc10k_std over") for t in rest)  # a spread is not a quality curve


def test_two_extractors_keep_their_labels_and_no_table_without_intermediate_points():
    a = rec("dcgan", 0, {}, 20.0)
    b = rec("vanilla", 0, {}, 30.0, extractor="inception-v3-compat")
    text = terminal_text(compile_leaderboard([a, b]))
    assert f"fid10k[{EXT}]" in text and "fid10k[inception-v3-compat]" in text
    assert "feature extractor" not in text and "over the budget" not in text
