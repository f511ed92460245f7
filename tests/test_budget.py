import pytest

from ganbench.training.budget import Budget, Counters
from ganbench.errors import UsageError


@pytest.mark.parametrize(
    "text, kind, amount, canonical",
    [
        ("90s", "seconds", 90, "90s"),
        ("30m", "seconds", 1800, "30m"),
        ("2h", "seconds", 7200, "2h"),
        ("60s", "seconds", 60, "1m"),
        ("1.5min", "seconds", 90, "90s"),
        ("50kimg", "images", 50_000, "50kimg"),
        ("1Mimg", "images", 1_000_000, "1000kimg"),
        ("500img", "images", 500, "500img"),
        ("2000steps", "steps", 2000, "2000steps"),
        ("2ksteps", "steps", 2000, "2000steps"),
    ],
)
def test_parse(text, kind, amount, canonical):
    b = Budget.parse(text)
    assert (b.kind, b.amount, b.text) == (kind, amount, canonical)


@pytest.mark.parametrize("text", ["", "abc", "30", "0s", "-5m", "10parsecs", "0.5steps", "1.5img", "nans"])
def test_bad_budgets_explain_the_format(text):
    with pytest.raises(UsageError) as info:
        Budget.parse(text)
    assert "50kimg" in str(info.value)  # every message shows valid examples


def test_fraction_follows_the_budget_kind_only():
    c = Counters(steps=50, images=3200, train_seconds=12.0)
    assert Budget.parse("100steps").fraction(c) == 0.5
    assert Budget.parse("6400img").fraction(c) == 0.5
    assert Budget.parse("24s").fraction(c) == 0.5
    assert not Budget.parse("100steps").exhausted(c)
    assert Budget.parse("50steps").exhausted(c)
    assert Budget.parse("10steps").fraction(c) == 1.0


def test_counters_throughput():
    assert Counters(images=1000, train_seconds=4.0).images_per_second == 250
    assert Counters().images_per_second == 0.0
