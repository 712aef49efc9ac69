"""Behavioural features: replay and serving agree; order, duplicates and the state bound change nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from shared.behaviour import features as b
from shared.behaviour import state_codec
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def stream() -> b.Payments:
    """12,000 payments of 150 accounts: about 80 each, so states fill up and evict."""
    cols = TransactionGenerator(seed=21, accounts=150).columns(12_000, now=START)
    return b.Payments.of(cols["id"], cols["account_id"], cols["t_ms"], cols)


def incremental(
    stream: b.Payments, batches: list[np.ndarray], states: dict[Any, str] | None = None
) -> tuple[np.ndarray, dict[Any, str]]:
    """Feed `batches` of rows through `score_batch_features`, storing each state as a document's JSON in between.

    Returns the features and each account's stored state (the base64 text a profile document holds).
    """
    stored: dict[Any, str] = {a: json.dumps(s) for a, s in (states or {}).items()}
    out = np.full((len(stream), len(b.FEATURES)), np.nan)
    for rows in batches:
        loaded = {a: json.loads(stored[a]) for a in set(stream.account[rows].tolist()) if a in stored}
        feats, new = b.score_batch_features(stream.take(rows), loaded)
        stored.update(
            {a: json.dumps(text) for a, text in zip(new, state_codec.to_texts(list(new.values())), strict=True)}
        )
        out[rows] = feats
    return out, {a: json.loads(s) for a, s in stored.items()}


def in_order(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(s, min(s + size, n)) for s in range(0, n, size)]


@pytest.mark.parametrize("size", [1, 37, 1000])
def test_incremental_equals_replay(stream: b.Payments, size: int) -> None:
    """Serving, batch by batch with states stored as JSON, gives the very bits training's replay gives."""
    expected = b.replay(stream)
    rows = in_order(len(stream), size)
    if size == 1:
        rows = rows[:2_000]
    actual, _ = incremental(stream, rows)
    n = sum(r.size for r in rows)
    assert np.array_equal(actual[:n], expected[:n])


def test_out_of_order_within_batches_gives_the_same_features(stream: b.Payments) -> None:
    """Shuffled batches, and a replay of the shuffled history, give the in-order features."""
    expected = b.replay(stream)
    rng = np.random.default_rng(0)
    shuffled = [rng.permutation(r) for r in in_order(len(stream), 500)]
    actual, _ = incremental(stream, shuffled)
    assert np.array_equal(actual, expected)
    perm = rng.permutation(len(stream))
    replayed = np.empty_like(expected)
    replayed[perm] = b.replay(stream.take(perm))
    assert np.array_equal(replayed, expected)


def test_late_payment_gets_its_in_order_features(stream: b.Payments) -> None:
    """A payment held back and delivered a few batches later gets the features it would have had in order."""
    expected = b.replay(stream)
    late = 1_234
    batches = [r[r != late] for r in in_order(len(stream), 100)]
    batches.insert(15, np.array([late]))
    actual, _ = incremental(stream, batches)
    assert np.array_equal(actual[late], expected[late])


def test_redelivered_batches_count_nothing_twice(stream: b.Payments) -> None:
    """Redelivering the last batch, or half of it after a crash, reproduces its features and leaves the states alone.

    Event Hubs redelivers at most the batch after the last checkpoint, so the replayed payments are
    the newest the states hold.
    """
    rows = in_order(4_000, 400)
    first, states = incremental(stream, rows)
    again, states_again = incremental(stream, [rows[-1][:200], rows[-1]], states)
    assert np.array_equal(again[rows[-1]], first[rows[-1]])
    assert states_again == states
    _, changed = b.score_batch_features(stream.take(rows[-1]), states)
    assert changed == {}  # nothing to write


def test_duplicates_within_a_batch_count_once(stream: b.Payments) -> None:
    """The same payment twice in one batch counts once, and both copies get its features."""
    rows = np.arange(0, 3_000)
    doubled = np.concatenate([rows, rows[::7]])
    feats, _ = b.score_batch_features(stream.take(doubled), {})
    expected = b.replay(stream.take(rows))
    assert np.array_equal(feats[: rows.size], expected)
    assert np.array_equal(feats[rows.size :], expected[::7])
    assert np.array_equal(b.replay(stream.take(doubled))[: rows.size], expected)


def test_state_is_bounded_json_and_most_recent(stream: b.Payments) -> None:
    """Each account keeps its most recent payments, in event-time order, as plain JSON: STATE_LIMIT of them, or
    more only to hold the last batch's own payments and the WINDOW before them."""
    batches = in_order(len(stream), 1000)
    _, stored = incremental(stream, batches)
    states = {a: state_codec.decode(text) for a, text in stored.items()}
    last = batches[-1]
    for account, state in states.items():
        mine = np.flatnonzero(stream.account == account)
        ordered = mine[np.argsort(stream.t_ms[mine], kind="stable")]
        in_last = int(np.isin(mine, last).sum())
        bound = max(b.STATE_LIMIT, in_last + b.WINDOW)
        assert min(len(mine), b.STATE_LIMIT) <= len(state["id"]) <= bound
        assert state["id"] == [state_codec.id_hex(i) for i in stream.id[ordered[-len(state["id"]) :]].tolist()]
        assert state["t_ms"] == stream.t_ms[ordered[-len(state["id"]) :]].tolist()
        assert state["amount"] == stream.amount[ordered[-len(state["id"]) :]].tolist()
    assert max(len(s["id"]) for s in states.values()) >= b.STATE_LIMIT


def test_a_burst_redelivered_is_exact(stream: b.Payments) -> None:
    """An account with more payments in one batch than STATE_LIMIT - WINDOW: the batch redelivered after its state
    was stored gets the very same features (the state kept every predecessor the first delivery read)."""
    account = max(set(stream.account.tolist()), key=lambda a: int((stream.account == a).sum()))
    mine = np.flatnonzero(stream.account == account)
    mine = mine[np.argsort(stream.t_ms[mine], kind="stable")]
    assert mine.size > b.STATE_LIMIT + 30
    before, burst = mine[: mine.size - 35], mine[mine.size - 35 :]
    _, states = incremental(stream, [before])
    first, after = b.score_batch_features(stream.take(burst), states)
    again, _ = b.score_batch_features(stream.take(burst), after)
    assert np.array_equal(again, first)
    assert np.array_equal(first, b.replay(stream.take(mine))[mine.size - 35 :])


def test_features_read_only_the_past_of_the_same_account(stream: b.Payments) -> None:
    """Dropping every later payment, or every other account, leaves a payment's features unchanged."""
    expected = b.replay(stream)
    cut = 6_000
    assert np.array_equal(b.replay(stream.take(np.arange(cut))), expected[:cut])
    account = stream.account[cut]
    mine = np.flatnonzero(stream.account == account)
    assert np.array_equal(b.replay(stream.take(mine)), expected[mine])


def test_no_history_equals_a_first_payment(stream: b.Payments) -> None:
    """History unknown scores a payment exactly as the first payment of a new account."""
    columns = {name: getattr(stream, name) for name in b.Payments.__dataclass_fields__}
    fresh = b.Payments.of(stream.id, np.arange(len(stream)), stream.t_ms, columns)
    assert np.array_equal(b.no_history(columns), b.replay(fresh))


def test_hand_made_burst() -> None:
    """Three payments in 20 minutes after a quiet month: counts, sums, ratio, novelty and balance share."""
    t0 = 1_767_225_600_000
    rows = [  # (t, amount, balance, category, method, type, foreign)
        (t0, 20.0, 1000.0, 0, 0, 0, 0),
        (t0 + b.DAY_MS, 30.0, 980.0, 0, 0, 0, 0),
        (t0 + 5 * b.DAY_MS, 40.0, 950.0, 0, 0, 0, 0),
        (t0 + 6 * b.DAY_MS, 300.0, 910.0, 9, 3, 1, 1),
        (t0 + 6 * b.DAY_MS + 600_000, 400.0, 610.0, 9, 3, 1, 1),
    ]
    cols = {
        name: [r[i + 1] for r in rows]
        for i, name in enumerate(
            [
                "amount",
                "old_balance",
                "category_recipient",
                "transaction_method",
                "transaction_type",
                "foreign_transaction",
            ]
        )
    }
    p = b.Payments.of([f"p{i}" for i in range(5)], ["a"] * 5, [r[0] for r in rows], cols)
    f = dict(zip(b.FEATURES, b.replay(p)[4], strict=True))
    assert f["history_count"] == 4
    assert f["seconds_since_previous"] == 600
    assert (f["payments_last_hour"], f["amount_last_hour"]) == (2, 700.0)
    assert (f["payments_last_day"], f["amount_last_day"]) == (2, 700.0)
    assert f["amount_to_usual"] == pytest.approx(400.0 / 35.0)
    assert (f["new_recipient_category"], f["new_transaction_method"], f["new_transaction_type"]) == (0, 0, 0)
    assert f["first_foreign"] == 0
    assert f["balance_spent_last_hour"] == pytest.approx(700.0 / 910.0)
    third = dict(zip(b.FEATURES, b.replay(p)[3], strict=True))
    assert (third["new_recipient_category"], third["first_foreign"]) == (1, 1)
    record = {"category_recipient": "money_transfer", "transaction_method": "bank_transfer"}
    assert b.describe("payments_last_hour", f, record) == "2 payments in the last hour"
    assert b.describe("amount_to_usual", f, record) == "amount 11x usual"
    assert b.describe("first_foreign", third, record) == "first foreign payment"
    assert b.describe("new_recipient_category", third, record) == "first payment to money transfer"


def test_timestamps_parse_to_epoch_ms() -> None:
    """Contract timestamps, with Z or +00:00, parse to the same milliseconds as datetime does."""
    stamps = ["2026-01-01T00:00:00.123Z", "2026-06-30T23:59:59.999+00:00", "2026-02-03T04:05:06Z"]
    expected = [int(datetime.fromisoformat(s).timestamp() * 1000 + 0.5) for s in stamps]
    assert b.timestamps_ms(stamps).tolist() == expected


@pytest.mark.parametrize("stamp", ["20260101T000000Z", "2026-01-01T00:00:00,5Z", "2026-01-01T00:00:00+00:00:00"])
def test_non_contract_timestamps_are_refused_by_name(stamp: str) -> None:
    """Text outside the contract's form is a ValueError naming its position, the contract's own definition."""
    with pytest.raises(ValueError, match="not contract timestamps, the first at 1"):
        b.timestamps_ms(["2026-01-01T00:00:00Z", stamp])


def test_unknown_state_version_is_refused(stream: b.Payments) -> None:
    """A state written by another layout is refused rather than misread."""
    _, new = b.score_batch_features(stream.take(np.arange(1)), {})
    blob = new[stream.account[0]]
    with pytest.raises(ValueError, match="version"):
        b.score_batch_features(stream.take(np.arange(1, 2)), {stream.account[0]: bytes([99]) + blob[1:]})
    with pytest.raises(ValueError, match="version"):
        b.score_batch_features(stream.take(np.arange(1, 2)), {stream.account[0]: {"v": 2, "id": [], "t_ms": []}})


REPLAY_SHA256 = "99d9e015b1187e1a2df4518bf61bb96e60f44eb2db19e83a10904eb614a821f8"


def _payment_fields(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The fields features read, drawn at random (in this order: `_tied_stream`'s golden hash depends on it)."""
    return {
        "amount": np.round(rng.lognormal(3.5, 1.2, n), 2),
        "old_balance": np.round(rng.normal(5000, 3000, n), 2),
        "category_recipient": rng.integers(0, 11, n),
        "transaction_method": rng.integers(0, 6, n),
        "transaction_type": rng.integers(0, 3, n),
        "foreign_transaction": (rng.random(n) < 0.1).astype(np.int64),
    }


def _tied_stream() -> b.Payments:
    """6,000 payments of 60 accounts in whole seconds (600 ties within an account), a tenth delivered twice."""
    rng = np.random.default_rng(20)
    n = 6000
    accounts = rng.integers(0, 60, n)
    t = 1_767_225_600_000 + rng.integers(0, 40 * 86_400, n) * 1000
    columns = _payment_fields(rng, n)
    p = b.Payments.of([f"g-{i:05d}" for i in range(n)], [f"a{a}" for a in accounts], t, columns)
    return p.take(np.concatenate([np.arange(n), rng.choice(n, n // 10, replace=False)]))


def test_replay_gives_the_same_bits_as_before_the_binary_state() -> None:
    """Training's features are the ones the model was trained on: a golden hash taken before the state changed form."""
    out = b.replay(_tied_stream())
    assert (
        hashlib.sha256(out.tobytes()).hexdigest() == "99d9e015b1187e1a2df4518bf61bb96e60f44eb2db19e83a10904eb614a821f8"
    )


def test_ties_and_copies_within_a_batch_are_ordered_as_replay_orders_them() -> None:
    """Payments of one account in one millisecond, and copies, in one batch: serving gives replay's bits."""
    p = _tied_stream()
    feats, _ = b.score_batch_features(p, {})
    assert np.array_equal(feats, b.replay(p))


def test_a_later_payment_in_a_stored_millisecond_lands_where_replay_puts_it() -> None:
    """Two payments of one account in one millisecond, the second arriving after the first was stored:
    serving orders them by id hash, as replay does, whichever arrives first."""
    t0 = 1_767_225_600_000
    columns = {name: [0, 0] for name in b.PAYMENT_FIELDS} | {"amount": [10.0, 20.0], "old_balance": [100.0, 90.0]}
    p = b.Payments.of(["b", "a"], ["acct", "acct"], [t0, t0], columns)
    expected = b.replay(p)
    assert sorted(expected[:, 0].tolist()) == [0.0, 1.0]  # one of the two is the other's predecessor
    for first, second in ((0, 1), (1, 0)):
        _, stored = b.score_batch_features(p.take(np.array([first])), {})
        later, _ = b.score_batch_features(p.take(np.array([second])), stored)
        assert np.array_equal(later[0], expected[second])


@pytest.mark.parametrize("seed", range(8))
def test_payments_of_one_millisecond_in_any_batches_get_replays_features(seed: int) -> None:
    """Accounts whose payments share a handful of milliseconds, copies included, arriving in event time but
    in any order within a millisecond, over batches of any size: a payment gets replay's features whenever
    every payment replay puts before it had arrived by its batch, whichever batches its ties came in."""
    rng = np.random.default_rng(seed)
    n = 90
    columns = _payment_fields(rng, n)
    t = 1_767_225_600_000 + rng.integers(0, 5, n) * 3_600_000
    ids = np.array([f"t-{i}" for i in range(n)], dtype=object)
    account = np.array([i % 3 for i in range(n)])
    p = b.Payments.of(ids, [f"a{a}" for a in account], t, columns)
    arrival_order = np.lexsort((rng.random(n), t))  # event time, ties in any order
    rows = np.concatenate([arrival_order, rng.choice(n, 10)])  # and some copies at the end
    cuts = np.sort(rng.choice(np.arange(1, rows.size), int(rng.integers(2, 20)), replace=False))
    batches = [np.arange(a, z) for a, z in zip([0, *cuts], [*cuts, rows.size], strict=True)]
    features, _ = incremental(p.take(rows), batches)
    batch_of = np.empty(n, dtype=np.int64)
    for k, batch in reversed(list(enumerate(batches))):
        batch_of[rows[batch]] = k  # a payment's first delivery
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((state_codec.id_hashes(ids), t, account))] = np.arange(n)  # replay's order
    exact = np.array(
        [not np.any((account == account[i]) & (rank < rank[i]) & (batch_of > batch_of[i])) for i in range(n)]
    )
    tied_exact = exact & np.array([np.any((account == account[i]) & (t == t[i]) & (rank < rank[i])) for i in range(n)])
    assert tied_exact.sum() >= 10  # payments with a tie before them, many in other batches, are checked
    expected = b.replay(p)
    first = np.arange(n)  # the first n rows are each payment's first delivery
    assert np.array_equal(features[first][exact[rows[first]]], expected[rows[first]][exact[rows[first]]])


def test_two_partitions_a_little_apart_give_replay_and_whole_states(stream: b.Payments) -> None:
    """Even rows on one partition and odd on another, their batches interleaved up to two batches apart: payments
    land among stored ones, and each state holds its account's payments from its oldest kept one on, every field
    as sent; the payments of the batch that runs behind get replay's features (the other partition's payments
    were scored before them, without them, as serving does with any late payment)."""
    rows = np.arange(4_000)
    parts = [in_order_of(rows[rows % 2 == p], 100) for p in (0, 1)]
    rng = np.random.default_rng(3)
    order: list[np.ndarray] = []
    taken = [0, 0]
    while taken[0] < len(parts[0]) or taken[1] < len(parts[1]):
        ahead = taken[0] - taken[1]
        p = int(rng.integers(0, 2)) if abs(ahead) < 2 else int(ahead > 0)
        if taken[p] == len(parts[p]):
            p = 1 - p
        order.append(parts[p][taken[p]])
        taken[p] += 1
    features, stored = incremental(stream, order)
    # A payment's features are replay's when nothing dated before it arrives after it.
    arrival = np.empty(rows.size, dtype=np.int64)
    arrival[np.concatenate(order)] = np.repeat(np.arange(len(order)), [r.size for r in order])
    expected = b.replay(stream.take(rows))
    on_time = np.array([_none_later_before(stream, rows, arrival, r) for r in rows.tolist()])
    assert on_time.sum() > 1_000
    assert np.array_equal(features[rows][on_time], expected[on_time])
    for account, text in stored.items():
        state = state_codec.decode(text)
        mine = rows[stream.account[rows] == account]
        mine = mine[np.argsort(stream.t_ms[mine], kind="stable")]
        kept = mine[stream.t_ms[mine] >= state["t_ms"][0]]
        assert state["t_ms"] == stream.t_ms[kept].tolist()
        assert state["id"] == [state_codec.id_hex(i) for i in stream.id[kept].tolist()]
        assert state["amount"] == stream.amount[kept].tolist()
        assert state["old_balance"] == stream.old_balance[kept].tolist()
        assert state["category_recipient"] == stream.category_recipient[kept].tolist()


def _none_later_before(stream: b.Payments, rows: np.ndarray, arrival: np.ndarray, row: int) -> bool:
    """No payment of `row`'s account dated before it arrived in a later batch."""
    mine = rows[(stream.account[rows] == stream.account[row]) & (stream.t_ms[rows] < stream.t_ms[row])]
    return bool(np.all(arrival[mine] <= arrival[row]))


def in_order_of(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[s : s + size] for s in range(0, rows.size, size)]
