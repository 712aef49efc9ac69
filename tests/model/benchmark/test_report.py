"""Tests for model/benchmark/report.py: ours beside the published and the measured baselines."""

from __future__ import annotations

from dataclasses import replace

import pytest

from model.benchmark import measure, report
from tests.model.benchmark.conftest import StandIn

pytestmark = pytest.mark.unit


def test_markdown_sets_ours_beside_the_published_baselines(measured: tuple[measure.Result, StandIn]) -> None:
    """The tables hold the handbook's published figures, the measured baselines, ours, and the simulation's figures."""
    text = report.markdown(measured[0])
    assert "| Published (handbook's data): Random forest | 0.867 | 0.658 | 0.287 |  |  |" in text
    ours = measured[0].models[-1].metrics
    assert f"| **Ours** (project recipe) | {ours.roc_auc:.3f} | {ours.average_precision:.3f} |" in text
    assert "Measured here: XGBoost" in text
    assert "| Payments | 1,754,155 |" in text
    assert "## At 0.5% fraud prevalence" in text
    assert "| Ours | compromised customer |" in text


def test_without_ours_the_report_says_so(measured: tuple[measure.Result, StandIn]) -> None:
    """A baselines-only run names that our recipe was not run."""
    result = measured[0]
    text = report.markdown(replace(result, models=result.models[:3]))
    assert "**Ours**" not in text
    assert "- Ours: not run (`--baselines-only`)." in text
