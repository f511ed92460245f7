"""ganbench's toy-suite leaderboards set against PacGAN's Table 1, with the issue's verdict per number.

    python benchmarks/published/pacgan_table1.py results/toys/ring results/toys/grid

Prints one Markdown row per (dataset, configuration, metric): the published mean ±
standard error over 10 trials (Lin et al. 2018, Table 1; REFERENCES §3), ganbench's
mean ± the half-width of its 95 % Student-t interval over seeds, and whether the
two agree in the sense the toy issue defines: |ganbench − published| ≤ published
standard error + ganbench's half-width. The rows of results/toys/README.md are its
output. It reads only ``leaderboard.json`` (the records ``ganbench run`` writes).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

#: (dataset, pack) -> metric -> (mean, standard error). Lin et al. 2018, Table 1 ("GAN" and "PacGAN2" rows).
TABLE1: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    ("ring", 1): {"modes": (6.3, 0.5), "hq": (98.2, 0.2), "rkl": (0.45, 0.09)},
    ("ring", 2): {"modes": (7.9, 0.1), "hq": (95.6, 2.0), "rkl": (0.07, 0.03)},
    ("grid", 1): {"modes": (17.3, 0.8), "hq": (94.8, 0.7), "rkl": (0.70, 0.07)},
    ("grid", 2): {"modes": (23.8, 0.7), "hq": (91.3, 0.8), "rkl": (0.13, 0.04)},
}
#: The sample count PacGAN scores on, as ganbench names the scores (``modes2500``).
SAMPLES = "2500"
CONFIG = {1: "GAN", 2: "PacGAN2"}


def agrees(ours: float, half_width: float, published: float, standard_error: float) -> bool:
    """The issue's test: inside the published interval widened by ganbench's own 95 % half-width.

    One seed has no interval (NaN): then only the published standard error widens it.
    """
    widen = 0.0 if math.isnan(half_width) else half_width
    return abs(ours - published) <= standard_error + widen


def pack_of(row: dict) -> int:
    value = row.get("pack")
    return 1 if value in (None, "") or (isinstance(value, float) and math.isnan(value)) else int(float(value))


def rows(leaderboard: list[dict]) -> list[str]:
    """The Markdown rows for the leaderboard's GAN and PacGAN2 rows that Table 1 has numbers for."""
    out = []
    for row in leaderboard:
        key = (row["dataset"], pack_of(row))
        if key not in TABLE1:
            continue
        for metric, (published, se) in TABLE1[key].items():
            column = f"score:{metric}{SAMPLES}"
            ours, half, n = row[column], row[f"{column}:ci95"], int(row[f"{column}:n"])
            verdict = "yes" if agrees(ours, half, published, se) else "no"
            shown = f"{ours:.3g}" if math.isnan(half) else f"{ours:.3g} ± {half:.2g}"
            out.append(f"| {key[0]} | {CONFIG[key[1]]} | {metric} | {published:g} ± {se:g} | {shown} "
                       f"(n={n}, {row['budget']}) | {verdict} |")
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print("| dataset | config | metric | PacGAN Table 1 (mean ± s.e., 10 seeds, 400k steps) "
          "| ganbench (mean ± 95 % CI half-width) | inside the widened interval? |")
    print("|---|---|---|---|---|---|")
    for folder in argv:
        for line in rows(json.loads((Path(folder) / "leaderboard.json").read_text())):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
