"""Tests for model/benchmark/handbook_features.py: the window definitions on a hand-made toy, and the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.benchmark import handbook_features as hf
from model.benchmark.simulator import simulate
from model.training import protocol

pytestmark = pytest.mark.unit

DAY = 86_400_000
HOUR = 3_600_000
START = 1_522_540_800_000  # 2018-04-01T00:00:00Z, a Sunday


def _features(rows: list[tuple[str, str, float, float, int]]) -> pd.DataFrame:
    """Rows of (customer, terminal, day, hour, fraud) with amount 10 x (row number + 1), as a named frame."""
    t_ms = np.array([START + int(d * DAY + h * HOUR) for _, _, d, h, _ in rows], dtype=np.int64)
    columns = {
        "t_ms": t_ms,
        "amount": 10.0 * np.arange(1, len(rows) + 1),
        "account_id": np.array([r[0] for r in rows], dtype=object),
        "merchant_id": np.array([r[1] for r in rows], dtype=object),
        "is_fraud": np.array([r[4] for r in rows], dtype=np.int64),
    }
    return pd.DataFrame(hf.transform(columns), columns=list(hf.FEATURES))


def test_calendar_flags() -> None:
    """Sunday is weekend, Monday is not; 06:59 is night, 07:00 is not."""
    f = _features([("a", "t", 0, 6.99, 0), ("a", "t", 1, 7, 0)])
    assert f["TX_DURING_WEEKEND"].tolist() == [1.0, 0.0]
    assert f["TX_DURING_NIGHT"].tolist() == [1.0, 0.0]


def test_customer_windows_include_the_payment_and_exclude_the_left_edge() -> None:
    """Windows (t - w, t]: a payment exactly one day earlier is out of the 1-day window, the payment itself is in."""
    f = _features(
        [
            ("a", "t", 0, 10, 0),  # 10
            ("a", "t", 0, 20, 0),  # 20
            ("a", "t", 1, 9, 0),  # 30: 1-day window holds 10, 20, 30
            ("a", "t", 1, 10, 0),  # 40: day 0 10:00 is exactly 1 day back, out
            ("a", "t", 8, 11, 0),  # 50: alone in 1 and 7 days; all five in 30
            ("b", "t", 8, 11, 0),  # 60: another customer, alone
        ]
    )
    assert f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 2, 3, 3, 1, 1]
    assert f["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].tolist() == [10, 15, 20, 30, 50, 60]
    assert f["CUSTOMER_ID_NB_TX_7DAY_WINDOW"].tolist() == [1, 2, 3, 4, 1, 1]
    assert f["CUSTOMER_ID_NB_TX_30DAY_WINDOW"].tolist() == [1, 2, 3, 4, 5, 1]
    assert f["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"].tolist() == [10, 15, 20, 25, 30, 60]


def test_terminal_windows_end_a_delay_before_the_payment() -> None:
    """Windows (t - 7 - w, t - 7] days: labels younger than the delay are never read, the right edge is in."""
    f = _features(
        [
            ("a", "t", 0, 12, 1),
            ("b", "t", 0, 13, 0),
            ("c", "t", 7, 12, 0),  # 1-day window (day -1 12:00, day 0 12:00]: the fraud only
            ("d", "t", 7, 13, 1),  # (day -1 13:00, day 0 13:00]: both day-0 payments
            ("e", "t", 8, 12.5, 0),  # 1 day: day 0 13:00 only; 7 days: both day-0 ones (day-7 ones too young)
            ("f", "u", 8, 12.5, 0),  # another terminal: nothing known
        ]
    )
    assert f["TERMINAL_ID_NB_TX_1DAY_WINDOW"].tolist() == [0, 0, 1, 2, 1, 0]
    assert f["TERMINAL_ID_RISK_1DAY_WINDOW"].tolist() == [0, 0, 1.0, 0.5, 0, 0]
    assert f["TERMINAL_ID_NB_TX_7DAY_WINDOW"].tolist() == [0, 0, 1, 2, 2, 0]
    assert f["TERMINAL_ID_RISK_7DAY_WINDOW"].tolist() == [0, 0, 1.0, 0.5, 0.5, 0]
    assert f["TERMINAL_ID_NB_TX_30DAY_WINDOW"].tolist() == [0, 0, 1, 2, 2, 0]


def test_features_agree_with_time_based_rolling_windows() -> None:
    """On random data, the vectorised windows equal pandas' time-based rolling windows, as the handbook defines them."""
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(
        {
            "t_ms": START + np.sort(rng.choice(50 * DAY, n, replace=False)),
            "amount": rng.uniform(1, 100, n).round(2),
            "account_id": rng.choice(["a", "b", "c", "d", "e"], n).astype(object),
            "merchant_id": rng.choice(["t1", "t2", "t3"], n).astype(object),
            "is_fraud": (rng.random(n) < 0.2).astype(np.int64),
        }
    )
    got = pd.DataFrame(hf.transform({c: frame[c].to_numpy() for c in frame}), columns=list(hf.FEATURES))
    frame.index = pd.to_datetime(frame["t_ms"], unit="ms")
    for w in hf.WINDOW_DAYS:
        by_customer = frame.groupby("account_id")["amount"].rolling(f"{w}D")
        count = by_customer.count().reset_index(level=0, drop=True).sort_index()
        mean = by_customer.mean().reset_index(level=0, drop=True).sort_index()
        assert got[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"].to_numpy() == pytest.approx(count.to_numpy())
        assert got[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"].to_numpy() == pytest.approx(mean.to_numpy())
        by_terminal = frame.groupby("merchant_id")["is_fraud"]

        def rolled(days: int, how: str, grouped: pd.core.groupby.SeriesGroupBy = by_terminal) -> np.ndarray:
            r = getattr(grouped.rolling(f"{days}D"), how)()
            return np.asarray(r.reset_index(level=0, drop=True).sort_index().to_numpy(), dtype=np.float64)

        nb = rolled(hf.DELAY_DAYS + w, "count") - rolled(hf.DELAY_DAYS, "count")
        frauds = rolled(hf.DELAY_DAYS + w, "sum") - rolled(hf.DELAY_DAYS, "sum")
        risk = np.divide(frauds, nb, out=np.zeros_like(nb), where=nb > 0)
        assert got[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"].to_numpy() == pytest.approx(nb)
        assert got[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"].to_numpy() == pytest.approx(risk)


def test_baselines_are_the_handbooks_three_and_rank_frauds() -> None:
    """Each baseline fits on one week and scores the week after a delay with probabilities far better than chance."""
    sim = simulate(seed=1, customers=500, terminals=1_000, days=38)
    cols = sim.columns
    features = hf.transform(cols)
    split = protocol.period_split(
        cols["t_ms"], train_days=10, delay_days=7, test_days=7, start_ms=int(sim.start.timestamp() * 1000) + 14 * DAY
    )
    assert [b.name for b in hf.BASELINES] == ["Logistic regression", "Random forest", "XGBoost"]
    for baseline in hf.BASELINES:
        scores = hf.fit_predict(baseline, features, cols["is_fraud"], split.train, split.test, seed=0, jobs=1)
        assert scores.shape == split.test.shape
        assert scores.min() >= 0.0
        assert scores.max() <= 1.0
        m = protocol.metrics(scores, cols["is_fraud"][split.test], cols["account"][split.test], np.zeros(scores.size))
        assert m.roc_auc > 0.7, baseline.name
