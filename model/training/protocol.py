"""The field's evaluation protocol as pure functions: periods in event time, and the metrics a fraud team reads.

Follows the ULB handbook (Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine Learning for
Credit Card Fraud Detection - Practical Handbook", 2022):

- periods (chapter 3.4 "Baseline fraud detection system", and 5.2 "Validation strategies"): a
  training period, then a delay period whose labels are not yet known when the model is trained
  (chargebacks and investigations take that long), then a test period; whole days in event time.
  Rows of the delay period are neither trained nor tested on. Features may still read history
  before a payment's time: merchant-risk features only from labels known before the payment's time
  minus the delay (the feature code enforces that, not this module).
  https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_3_GettingStarted/BaselineModeling.html
- the handbook's test set also leaves out the payments of cards already known to be compromised:
  on test day D, every card with a fraud from the start of the training period up to the day before
  D minus the delay (`drop_known_compromised`); the published baselines are measured that way;
- Card Precision@k (chapter 4.3 "Precision top-k metrics"): each day, cards ranked by the highest
  score of their payments that day, the k first taken; the day's figure is the share of those k
  cards with at least one fraud that day; the metric is the mean over days. As the handbook
  defines it, a card found compromised (fraudulent and in the top k) is blocked: it is left out of
  the ranking on the following days.
  https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_4_PerformanceMetrics/TopKBased.html
- Average Precision and ROC-AUC (chapter 4.2 "Threshold-free metrics"), plus recall at 1% and 0.1%
  false-positive rate and the Brier score, which the project reports everywhere.

Real card fraud is 0.1-1% of payments; `at_prevalence` measures the same model at a chosen rate by
dropping a seeded random share of the frauds, repeated and averaged. Per typology and per episode
(`by_typology`, `by_episode`) say which frauds are caught, and whether an attack's first payment is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from model.training.evaluate import MAX_FPR, STRICT_FPR, FloatArray, IntArray, recall_at_fpr

DAY_MS: Final = 86_400_000
TOP_K: Final = 100
"""Cards an investigation team checks a day: the handbook's k."""
TARGET_PREVALENCE: Final = 0.005
PREVALENCE_DRAWS: Final = 20
"""Frauds are subsampled to 0.5% of payments this many times (seeded); the figures are the means."""


@dataclass(frozen=True)
class PeriodSplit:
    """Row indexes, in event-time order, of the training, delay and test periods: whole days from `start_ms`."""

    train: IntArray
    delay: IntArray
    test: IntArray
    start_ms: int
    train_days: int
    delay_days: int
    test_days: int

    @property
    def test_start_ms(self) -> int:
        return self.start_ms + (self.train_days + self.delay_days) * DAY_MS

    @property
    def end_ms(self) -> int:
        return self.test_start_ms + self.test_days * DAY_MS

    def day(self, t_ms: np.ndarray) -> IntArray:
        """Whole days since `start_ms` (negative before it) of each event time."""
        return np.floor_divide(np.asarray(t_ms, dtype=np.int64) - self.start_ms, DAY_MS)


def period_split(
    t_ms: np.ndarray, *, train_days: int, delay_days: int, test_days: int, start_ms: int | None = None
) -> PeriodSplit:
    """Train, delay and test rows: `train_days`, then `delay_days`, then `test_days` whole days from `start_ms`.

    `start_ms` defaults to the UTC midnight on or before the earliest event. Rows before `start_ms`
    or after the test period belong to no period (they may still serve as features' history).
    """
    if min(train_days, test_days) < 1 or delay_days < 0:
        raise ValueError("train_days and test_days must be at least 1, delay_days at least 0")
    t = np.asarray(t_ms, dtype=np.int64)
    if t.size == 0:
        raise ValueError("no rows to split")
    start = int(t.min()) // DAY_MS * DAY_MS if start_ms is None else int(start_ms)
    order = np.argsort(t, kind="stable").astype(np.int64)
    day = np.floor_divide(t[order] - start, DAY_MS)
    bounds = np.cumsum([train_days, delay_days, test_days])

    def rows(lo: int, hi: int) -> IntArray:
        return order[(day >= lo) & (day < hi)]

    return PeriodSplit(
        train=rows(0, int(bounds[0])),
        delay=rows(int(bounds[0]), int(bounds[1])),
        test=rows(int(bounds[1]), int(bounds[2])),
        start_ms=start,
        train_days=train_days,
        delay_days=delay_days,
        test_days=test_days,
    )


def drop_known_compromised(
    split: PeriodSplit, *, t_ms: np.ndarray, accounts: np.ndarray, labels: np.ndarray, known_ms: np.ndarray
) -> IntArray:
    """The test rows left once cards already known to be compromised are taken out, as the handbook's test set is.

    On test day D a card is known compromised when it has a fraud, from the start of the training
    period, whose label was known on a day before D minus the delay (labels known at once: frauds
    up to day D - delay - 1). Frauds before the training period do not count, as in the handbook's
    `get_train_test_set`.
    """
    account = np.asarray(accounts)
    known_day = split.day(known_ms)
    frauds = np.flatnonzero(np.asarray(labels).astype(bool) & (split.day(t_ms) >= 0))
    test = split.test
    test_day = split.day(np.asarray(t_ms)[test])
    keep = np.ones(test.size, dtype=bool)
    for d in np.unique(test_day):
        known = account[frauds[known_day[frauds] < d - split.delay_days]]
        on_day = test_day == d
        keep[on_day] = ~np.isin(account[test[on_day]], known)
    return test[keep]


@dataclass(frozen=True)
class CardPrecision:
    """Card Precision@k: the mean over days, and each day's figure (days in increasing order)."""

    mean: float
    days: IntArray
    per_day: FloatArray


def card_precision_at_k(
    scores: np.ndarray,
    labels: np.ndarray,
    accounts: np.ndarray,
    days: np.ndarray,
    k: int = TOP_K,
    *,
    remove_detected: bool = True,
) -> CardPrecision:
    """Each day, the share of the k cards with the highest score that had a fraud that day; the mean over days.

    A card's score on a day is the highest score of its payments that day, its label whether any of
    them was fraud. Ties keep the cards' sorted order. With `remove_detected` (the handbook's
    definition) a card found compromised, fraudulent and among the k, is left out on later days.
    The denominator is k even on a day with fewer cards, as in the handbook.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    score = np.asarray(scores, dtype=np.float64)
    label = np.asarray(labels).astype(bool)
    # Cards as integer codes in their sorted order: the same ranking ties, without comparing strings per day.
    names, account = np.unique(np.asarray(accounts), return_inverse=True)
    del names
    day = np.asarray(days, dtype=np.int64)
    detected = np.zeros(0, dtype=account.dtype)
    all_days = np.unique(day)
    per_day = np.zeros(all_days.size, dtype=np.float64)
    for i, d in enumerate(all_days):
        rows = np.flatnonzero((day == d) & ~np.isin(account, detected))
        cards, inverse = np.unique(account[rows], return_inverse=True)
        best = np.full(cards.size, -np.inf)
        np.maximum.at(best, inverse, score[rows])
        fraud = np.zeros(cards.size, dtype=bool)
        np.logical_or.at(fraud, inverse, label[rows])
        top = np.argsort(-best, kind="stable")[:k]
        found = cards[top][fraud[top]]
        per_day[i] = found.size / k
        if remove_detected:
            detected = np.concatenate([detected, found])
    return CardPrecision(mean=float(per_day.mean()) if per_day.size else 0.0, days=all_days, per_day=per_day)


def threshold_at_fpr(scores: np.ndarray, labels: np.ndarray, max_fpr: float = MAX_FPR) -> float:
    """The lowest cut `s` for the rule `score >= s` that flags at most `max_fpr` of legitimate rows.

    Flagging at that cut gives exactly `evaluate.recall_at_fpr`'s recall. Infinite when even the
    highest score would flag too many legitimate rows.
    """
    fpr, _, cuts = roc_curve(np.asarray(labels).astype(np.int64), scores, drop_intermediate=False)
    return float(cuts[np.flatnonzero(fpr <= max_fpr)[-1]])


@dataclass(frozen=True)
class Metrics:
    """The protocol's figures on one set of scored rows."""

    n: int
    frauds: int
    fraud_rate: float
    roc_auc: float
    average_precision: float
    card_precision_at_k: float
    recall_at_1pct_fpr: float
    recall_at_0_1pct_fpr: float
    brier: float

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}


def metrics(scores: np.ndarray, labels: np.ndarray, accounts: np.ndarray, days: np.ndarray, k: int = TOP_K) -> Metrics:
    """AP, ROC-AUC, Card Precision@k, recall at 1% and 0.1% FPR and Brier of fraud probabilities `scores`."""
    score = np.asarray(scores, dtype=np.float64)
    label = np.asarray(labels).astype(np.int64)
    frauds = int(label.sum())
    if frauds in (0, label.size):
        raise ValueError("the scored rows hold only one class")
    return Metrics(
        n=int(label.size),
        frauds=frauds,
        fraud_rate=frauds / label.size,
        roc_auc=float(roc_auc_score(label, score)),
        average_precision=float(average_precision_score(label, score)),
        card_precision_at_k=card_precision_at_k(score, label, accounts, days, k).mean,
        recall_at_1pct_fpr=recall_at_fpr(score, label, MAX_FPR),
        recall_at_0_1pct_fpr=recall_at_fpr(score, label, STRICT_FPR),
        brier=float(brier_score_loss(label, score)),
    )


def at_prevalence(
    scores: np.ndarray,
    labels: np.ndarray,
    accounts: np.ndarray,
    days: np.ndarray,
    *,
    target: float = TARGET_PREVALENCE,
    draws: int = PREVALENCE_DRAWS,
    seed: int = 0,
    k: int = TOP_K,
) -> Metrics:
    """The metrics at fraud rate `target`: all legitimate rows, a seeded random subset of frauds; mean of `draws`.

    Scores are not recalibrated, so the Brier score is that of a model trained at the data's own
    rate meeting fewer frauds. Raises `ValueError` when the rows' fraud rate is already at or below
    `target` (dropping frauds cannot raise it).
    """
    if not 0.0 < target < 1.0 or draws < 1:
        raise ValueError("target must be in (0, 1) and draws at least 1")
    label = np.asarray(labels).astype(np.int64)
    fraud_rows, legit_rows = np.flatnonzero(label == 1), np.flatnonzero(label == 0)
    keep = round(target * legit_rows.size / (1.0 - target))
    if keep >= fraud_rows.size:
        raise ValueError(f"fraud rate {fraud_rows.size / label.size:.4%} is not above the target {target:.4%}")
    if keep < 1:
        raise ValueError(f"{legit_rows.size} legitimate rows are too few for a fraud rate of {target:.4%}")
    rng = np.random.default_rng(seed)
    score, account, day = np.asarray(scores, dtype=np.float64), np.asarray(accounts), np.asarray(days)
    results = []
    for _ in range(draws):
        rows = np.sort(np.concatenate([legit_rows, rng.choice(fraud_rows, keep, replace=False)]))
        results.append(metrics(score[rows], label[rows], account[rows], day[rows], k).as_dict())
    mean = {name: float(np.mean([r[name] for r in results])) for name in results[0]}
    return Metrics(
        n=int(mean["n"]),
        frauds=int(mean["frauds"]),
        fraud_rate=mean["fraud_rate"],
        roc_auc=mean["roc_auc"],
        average_precision=mean["average_precision"],
        card_precision_at_k=mean["card_precision_at_k"],
        recall_at_1pct_fpr=mean["recall_at_1pct_fpr"],
        recall_at_0_1pct_fpr=mean["recall_at_0_1pct_fpr"],
        brier=mean["brier"],
    )


@dataclass(frozen=True)
class TypologyOutcome:
    """One typology's frauds: recall at the flagging threshold and at 1% FPR, AP against all legitimate rows."""

    typology: int
    frauds: int
    recall_at_threshold: float
    recall_at_1pct_fpr: float
    average_precision: float


def by_typology(
    scores: np.ndarray, labels: np.ndarray, typology: np.ndarray, threshold: float
) -> list[TypologyOutcome]:
    """For each typology (codes >= 0) among the frauds: recall at `score >= threshold` and at 1% FPR, and its AP.

    A typology's AP ranks its own frauds against every legitimate row, the other frauds left out.
    """
    score = np.asarray(scores, dtype=np.float64)
    label = np.asarray(labels).astype(bool)
    kind = np.asarray(typology, dtype=np.int64)
    cut = threshold_at_fpr(score, label, MAX_FPR)
    out = []
    for t in np.unique(kind[label & (kind >= 0)]):
        own = label & (kind == t)
        rows = own | ~label
        out.append(
            TypologyOutcome(
                typology=int(t),
                frauds=int(own.sum()),
                recall_at_threshold=float((score[own] >= threshold).mean()),
                recall_at_1pct_fpr=float((score[own] >= cut).mean()),
                average_precision=float(average_precision_score(own[rows], score[rows])),
            )
        )
    return out


@dataclass(frozen=True)
class EpisodeOutcome:
    """Episodes at one operating point: is the first payment caught, is any, and how late is the first catch."""

    first_flagged: float
    """Share of episodes whose first payment in event time is flagged."""
    caught: float
    """Share of episodes with at least one payment flagged."""
    median_first_caught_rank: float
    """Median position (1 = first payment) of the first flagged payment, over the caught episodes; NaN if none is."""


@dataclass(frozen=True)
class Episodes:
    """Per-episode outcomes at the flagging threshold and at 1% FPR."""

    episodes: int
    at_threshold: EpisodeOutcome
    at_1pct_fpr: EpisodeOutcome


def _episode_outcome(flagged: NDArray[np.bool_], start: IntArray, sizes: IntArray) -> EpisodeOutcome:
    first = np.minimum.reduceat(np.where(flagged, np.arange(flagged.size), flagged.size), start)
    caught = first < flagged.size
    rank = (first - start + 1)[caught]
    return EpisodeOutcome(
        first_flagged=float(flagged[start].mean()),
        caught=float(caught.mean()),
        median_first_caught_rank=float(np.median(rank)) if rank.size else float("nan"),
    )


def by_episode(
    scores: np.ndarray,
    labels: np.ndarray,
    episode: np.ndarray,
    t_ms: np.ndarray,
    threshold: float,
    *,
    include: np.ndarray | None = None,
) -> Episodes:
    """Whether each episode's first fraudulent payment (in event time) is flagged, at `threshold` and at 1% FPR.

    Episodes are the ids >= 0 of fraudulent rows; `include` keeps only the listed ids, e.g. those
    whose first payment falls among these rows rather than before them. Ties in time keep row order.
    """
    score = np.asarray(scores, dtype=np.float64)
    label = np.asarray(labels).astype(bool)
    ep = np.asarray(episode, dtype=np.int64)
    fraud = label & (ep >= 0)
    if include is not None:
        fraud &= np.isin(ep, include)
    rows = np.flatnonzero(fraud)
    if rows.size == 0:
        raise ValueError("no fraudulent row belongs to an episode")
    rows = rows[np.lexsort((rows, np.asarray(t_ms)[rows], ep[rows]))]
    ids, start, sizes = np.unique(ep[rows], return_index=True, return_counts=True)
    cut = threshold_at_fpr(score, label, MAX_FPR)
    return Episodes(
        episodes=int(ids.size),
        at_threshold=_episode_outcome(score[rows] >= threshold, start.astype(np.int64), sizes.astype(np.int64)),
        at_1pct_fpr=_episode_outcome(score[rows] >= cut, start.astype(np.int64), sizes.astype(np.int64)),
    )
