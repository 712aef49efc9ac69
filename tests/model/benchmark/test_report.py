"""Tests for model/benchmark/report.py: ours beside the published and the measured baselines."""

from __future__ import annotations

from dataclasses import replace

import pytest

from model.benchmark import report, seeds
from tests.model.benchmark.conftest import StandIn

pytestmark = pytest.mark.unit

KEYS = ("logistic_regression", "random_forest", "xgboost", "ours")


def _draw(seed: int, *figures: seeds.Figures) -> seeds.Draw:
    return seeds.Draw(seed, dict(zip(KEYS, figures, strict=True)), 60.0)


HAND = (
    _draw(0, (0.85, 0.55, 0.29), (0.80, 0.60, 0.30), (0.84, 0.50, 0.27), (0.82, 0.60, 0.28)),
    _draw(1, (0.83, 0.52, 0.28), (0.90, 0.70, 0.20), (0.83, 0.52, 0.26), (0.88, 0.75, 0.20)),
    _draw(2, (0.87, 0.58, 0.30), (0.85, 0.65, 0.25), (0.85, 0.54, 0.28), (0.89, 0.64, 0.24)),
)
"""Three simulations' figures; the random forest's and ours are those of test_seeds.py."""


def test_markdown_sets_ours_beside_the_published_baselines(runs: tuple[seeds.Runs, StandIn]) -> None:
    """The tables hold the handbook's published figures, the measured baselines, ours, and the simulation's figures."""
    text = report.markdown(runs[0])
    assert "| Published (handbook's data): Random forest | 0.867 | 0.658 | 0.287 |  |  |" in text
    ours = runs[0].first.models[-1].metrics
    assert f"| **Ours** (project recipe) | {ours.roc_auc:.3f} | {ours.average_precision:.3f} |" in text
    assert "Measured here: XGBoost" in text
    assert "| Payments | 1,754,155 |" in text
    assert "## At 0.5% fraud prevalence" in text
    assert "| Ours | compromised customer |" in text
    assert ": seeds 0 and 1 (the tables other than the one across them are seed 0's), 400 customers," in text
    assert "## Across 2 simulations" in text


def test_across_table_by_hand(runs: tuple[seeds.Runs, StandIn]) -> None:
    """Mean ± sd per model with the published figures beside the baselines, ours minus each, ours against the RF."""
    text = report.markdown(replace(runs[0], draws=HAND, elapsed=321.4))
    assert ": seeds 0 to 2 (" in text
    assert "; 321 s in all." in text
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[:3] == ["## The models on the test week", "## Across 3 simulations", "## At 0.5% fraud prevalence"]
    assert "Mean ± standard deviation (n - 1) over seeds 0 to 2; the" in text
    assert "standard deviations up to 0.050 in ROC-AUC and 0.078 in average precision" in text
    assert (
        "| Measured here: Random forest | 0.850 ± 0.050 | 0.650 ± 0.050 | 0.250 ± 0.050 | 0.867 / 0.658 / 0.287 |"
    ) in text
    assert "| **Ours** (project recipe) | 0.863 ± 0.038 | 0.663 ± 0.078 | 0.240 ± 0.040 |  |" in text
    assert "| Ours minus Random forest | +0.013 (2 of 3) | +0.013 (2 of 3) | -0.010 (1 of 3) |  |" in text
    assert "| Ours minus Logistic regression | +0.013 (2 of 3) | +0.113 (3 of 3) | -0.050 (0 of 3) |  |" in text
    assert (
        "Ours' mean against the handbook's published random forest: ROC-AUC 0.863 vs 0.867, missed by 0.004; "
        "average precision 0.663 vs 0.658, met (+0.005); CP@100 0.240 vs 0.287, missed by 0.047."
    ) in text


def test_one_seed_shows_no_spread(runs: tuple[seeds.Runs, StandIn]) -> None:
    """With one simulation the table gives its figures alone and says there is no spread."""
    text = report.markdown(replace(runs[0], draws=HAND[:1]))
    assert ": seed 0, 400 customers," in text
    assert "## Across 1 simulation\n" in text
    assert "One simulation only (`--seeds 1`), so no spread between seeds." in text
    assert "| Measured here: Random forest | 0.800 | 0.600 | 0.300 | 0.867 / 0.658 / 0.287 |" in text
    assert "±" not in text


def test_without_ours_the_report_says_so(runs: tuple[seeds.Runs, StandIn]) -> None:
    """A baselines-only run names that our recipe was not run, and pairs nothing with it."""
    result = runs[0]
    first = replace(result.first, models=result.first.models[:3])
    draws = tuple(replace(d, figures={k: d.figures[k] for k in KEYS[:3]}) for d in result.draws)
    text = report.markdown(replace(result, first=first, draws=draws))
    assert "**Ours**" not in text
    assert "Ours minus" not in text
    assert "Ours' mean" not in text
    assert "- Ours: not run (`--baselines-only`)." in text


def test_differences_round_without_a_negative_zero() -> None:
    """A difference that rounds to zero reads +0.000, and a miss below the shown precision is not 'missed by 0.000'."""
    assert report._signed(-0.0004) == "+0.000"
    assert report._signed(-0.0006) == "-0.001"
    assert report._against(0.8669, 0.867) == "0.867 vs 0.867, missed by less than 0.001"
    assert report._against(0.867, 0.867) == "0.867 vs 0.867, met (+0.000)"
    assert report._against(float("nan"), 0.867) == "n/a vs 0.867"
