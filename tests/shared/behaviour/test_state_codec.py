"""The stored form of a state: exact round trips, both record widths, and untrusted blobs refused, never misread."""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest

from shared.behaviour import days, state_codec
from shared.behaviour import features as b
from shared.behaviour.store import MemoryStateStore, profile_document, unusable_states
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

T0 = 1_767_225_600_000  # 2026-01-01


def _payments(rows: list[tuple[str, int, float, float]], account: str = "acct-1") -> b.Payments:
    """(id, t_ms, amount, old_balance) per row; categorical fields vary with the row."""
    n = len(rows)
    columns: dict[str, list[Any]] = {
        "amount": [r[2] for r in rows],
        "old_balance": [r[3] for r in rows],
        "category_recipient": [i % 11 for i in range(n)],
        "transaction_method": [i % 6 for i in range(n)],
        "transaction_type": [i % 3 for i in range(n)],
        "foreign_transaction": [i % 2 for i in range(n)],
    }
    return b.Payments.of([r[0] for r in rows], [account] * n, [r[1] for r in rows], columns)


def _blob(p: b.Payments) -> bytes:
    _, new = b.score_batch_features(p, {})
    (blob,) = new.values()
    return blob


@pytest.fixture(scope="module")
def full() -> bytes:
    """A busy account's state after 120 payments in batches of 10: 40 payments and day records."""
    cols = TransactionGenerator(seed=3, accounts=1).columns(120, now=datetime(2026, 3, 1, tzinfo=UTC))
    p = b.Payments.of(cols["id"], cols["account_id"], cols["t_ms"], cols)
    stored: dict[Any, object] = {}
    for lo in range(0, 120, 10):
        _, new = b.score_batch_features(p.take(np.arange(lo, lo + 10)), stored)
        stored.update(new)
    (blob,) = stored.values()
    assert isinstance(blob, bytes)
    return blob


def test_fnv1a_vectors_and_the_vectorised_hash_agree() -> None:
    """The published FNV-1a 64 vectors, and the one-column-at-a-time hash gives the same bits for any ids."""
    assert state_codec.id_hash("") == 0xCBF29CE484222325
    assert state_codec.id_hash("a") == 0xAF63DC4C8601EC8C
    assert state_codec.id_hash("foobar") == 0x85944171F73967E8
    ids = ["a", "78f1fc27-9361-4ca7-9912-f6bf7f0fae28", "zahlung-ä-1", "p-7", "x" * 128, "語"]
    assert state_codec.id_hashes(ids).tolist() == [state_codec.id_hash(i) for i in ids]
    uuids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(50)]
    assert state_codec.id_hashes(uuids).tolist() == [state_codec.id_hash(i) for i in uuids]


def test_a_full_state_round_trips_exactly(full: bytes) -> None:
    """40 payments and day records: narrow records, and `decode` gives back what the features read."""
    state = state_codec.decode(full)
    assert len(state["id"]) == b.STATE_LIMIT
    assert full[1] == 0  # narrow payment and day records
    assert len(full) == state_codec.SLOT * (1 + 40 + -(-full[3] // 3))  # header, payments, 3 day records a slot
    text = state_codec.to_texts([full])[0]
    assert state_codec.decode(text) == state == state_codec.decode(profile_document("acct", text, "now"))
    # Day totals: the state's own payments on each day plus its day records.
    totals = dict(zip(state["day"], state["day_n"], strict=True))
    own = dict(zip(*np.unique(days.day_number(np.asarray(state["t_ms"])), return_counts=True), strict=True))
    assert all(totals[int(d)] >= n for d, n in own.items())


def test_values_that_do_not_fit_narrow_records_are_kept_exactly() -> None:
    """Fractions of a cent, a 60-day gap and a balance jump of 30 million take wide records, bit for bit."""
    rows = [
        ("p1", T0, 12.345, 100.0),
        ("p2", T0 + 60 * b.DAY_MS, 0.1 + 0.2, 30_000_000.5),
        ("p3", T0 + 60 * b.DAY_MS + 1, 10.0, -999_999.99),
    ]
    blob = _blob(_payments(rows))
    assert blob[1] & state_codec.WIDE_PAYMENTS
    state = state_codec.decode(blob)
    assert state["t_ms"] == [r[1] for r in rows]
    assert state["amount"] == [r[2] for r in rows]
    assert state["old_balance"] == [r[3] for r in rows]
    assert state["id"] == [state_codec.id_hex(r[0]) for r in rows]
    assert state["foreign_transaction"] == [0, 1, 0]


def test_a_day_with_more_payments_than_a_narrow_record_counts_takes_a_wide_one() -> None:
    """400 payments in one day, 40 kept: the other 360 are one wide day record, and the totals stay exact."""
    rows = [(f"p{i:03d}", T0 + i * 1000, 1.0, 5000.0 - i) for i in range(400)]
    p = _payments(rows)
    stored: dict[Any, object] = {}
    for lo in range(0, 400, 20):
        _, new = b.score_batch_features(p.take(np.arange(lo, lo + 20)), stored)
        stored.update(new)
    blob = stored["acct-1"]
    assert isinstance(blob, bytes)
    assert blob[1] & state_codec.WIDE_DAYS
    state = state_codec.decode(blob)
    assert (state["day_n"], state["day_cents"]) == ([400], [40_000])


def test_many_states_decode_at_once_as_each_alone(full: bytes) -> None:
    """`decode_many` over several blobs (one unusable among them) gives each account its own state."""
    other = _blob(_payments([("q1", T0, 5.0, 10.0), ("q2", T0 + 5, 6.0, 5.0)], account="acct-2"))
    states, refused = state_codec.decode_many(["a", "bad", "b"], [full, b"\x03garbage", other])
    assert refused == ["bad"]
    assert list(states) == ["a", "b"]
    assert states["a"] == state_codec.decode(full)
    assert states["b"] == state_codec.decode(other)
    assert "bad" not in states


def _corruptions(blob: bytes) -> dict[str, object]:
    n = blob[2]
    first_dt = 12 + 8
    return {
        "empty": b"",
        "version 2": bytes([2]) + blob[1:],
        "unknown flag": blob[:1] + bytes([4]) + blob[2:],
        "no payments": blob[:2] + bytes([0]) + blob[3:],
        "count too high": blob[:2] + bytes([n + 1]) + blob[3:],
        "first gap not zero": blob[:first_dt] + b"\x01" + blob[first_dt + 1 :],
        "code out of range": blob[: 12 + 20] + (999).to_bytes(2, "little") + blob[12 + 22 :],
        "time before year 1": blob[:4] + (-(2**62)).to_bytes(8, "little", signed=True) + blob[12:],
        "one byte more": blob + b"\0",
        "a slot more": blob + bytes(state_codec.SLOT),
        "a header byte set": blob[:14] + b"\1" + blob[15:],
        "a day slot's tail set": blob[:-1] + b"\1",
        "v2 JSON": {"v": 2, "id": [], "t_ms": []},
        "text": "not a state",
        "none": None,
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "version 2",
        "unknown flag",
        "no payments",
        "count too high",
        "first gap not zero",
        "code out of range",
        "time before year 1",
        "one byte more",
        "a slot more",
        "a header byte set",
        "a day slot's tail set",
        "v2 JSON",
        "text",
        "none",
    ],
)
def test_corrupted_states_are_refused(full: bytes, case: str) -> None:
    """Each way a stored blob can be wrong reads as unusable, whatever else the batch holds."""
    bad = _corruptions(full)[case]
    states, refused = state_codec.decode_many(["ok", "bad"], [full, bad])
    assert refused == ["bad"]
    assert list(states) == ["ok"]


def test_every_truncation_is_refused(full: bytes) -> None:
    """A blob cut anywhere is refused: its length no longer matches its counts."""
    cuts = [full[:k] for k in range(len(full))]
    states, refused = state_codec.decode_many([str(k) for k in range(len(cuts))], cuts)
    assert len(states) == 0
    assert len(refused) == len(cuts)


def test_random_damage_never_crashes_and_what_is_accepted_is_sane(full: bytes) -> None:
    """Random byte flips: every blob is either refused or decoded into in-range values; nothing raises."""
    rng = np.random.default_rng(7)
    damaged = []
    for _ in range(400):
        raw = bytearray(full)
        for at in rng.integers(0, len(raw), size=int(rng.integers(1, 4))).tolist():
            raw[at] = int(rng.integers(0, 256))
        damaged.append(bytes(raw))
    states, refused = state_codec.decode_many([str(i) for i in range(len(damaged))], damaged)
    assert len(states) + len(refused) == len(damaged)
    assert np.all(np.isfinite(states.amount))
    assert np.all(np.isfinite(states.old_balance))
    assert np.all(states.t_ms >= state_codec.MS_RANGE[0])
    assert np.all(states.t_ms <= state_codec.MS_RANGE[1])
    assert np.all(states.category_recipient < state_codec.CODE_RADIX[0])
    assert np.all(states.rest_n >= 1)
    assert np.all(np.diff(states.starts) <= state_codec.STATE_HARD_LIMIT)


def test_texts_decode_and_bad_texts_stay_unusable(full: bytes) -> None:
    """Valid base64 texts are decoded; a text with a bad character or length is left as it is (and is unusable)."""
    good = state_codec.to_texts([full, full])
    texts: list[object] = [good[0], good[1][:-4] + "!!!!", good[1], good[0] + "=", 42]
    blobs = state_codec.from_texts(texts)
    assert blobs[0] == blobs[2] == full
    assert blobs[1] == texts[1]
    assert blobs[3:] == texts[3:]
    with pytest.raises(binascii.Error):
        binascii.a2b_base64(str(texts[1]), strict_mode=True)


def test_day_keys_are_the_day_totals_keys() -> None:
    """States key day totals as `days.DayTotals` does, so the two can be summed together."""
    totals = days.DayTotals.of(np.array([3]), np.array([740_000]), np.array([1]), np.array([100]))
    assert totals.key.tolist() == [3 * state_codec.KEY_SHIFT + 740_000]


def test_the_memory_store_refuses_unusable_blobs_and_counts_them(full: bytes) -> None:
    """A store holding a damaged blob reads it as no state (counted) but keeps its version for the next write."""
    store = MemoryStateStore()
    store.put("good", full)
    store.put("cut", full[:-3])
    store.put("text", state_codec.to_texts([full])[0])
    before = unusable_states.total
    snapshot = store.read(["good", "cut", "text", "absent"])
    assert unusable_states.total == before + 1
    assert list(snapshot.states) == ["good", "text"]
    assert set(snapshot.versions) == {"good", "cut", "text"}
    assert store.write({"cut": full}, snapshot, "now") == []
    assert list(store.read(["cut"]).states) == ["cut"]


def test_the_decoder_prints_a_document(full: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m shared.behaviour.state_codec <document>` prints the state as JSON; an unusable one says so."""
    document = profile_document("acct-1", state_codec.to_texts([full])[0], "2026-01-01T00:00:00.000Z")
    assert state_codec.main([orjson.dumps(document).decode()]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed == state_codec.decode(full)
    assert state_codec.main(['{"state": "AAAA"}']) == 1
    assert "unusable" in capsys.readouterr().out


def test_records_kept_as_stored_are_the_bytes_encoding_gives() -> None:
    """Serving copies the records of stored payments that keep their predecessor; encoding every record afresh
    gives the same blobs, so a state has one form however it was built."""
    cols = TransactionGenerator(seed=8, accounts=30).columns(3_000, now=datetime(2026, 3, 1, tzinfo=UTC))
    p = b.Payments.of(cols["id"], cols["account_id"], cols["t_ms"], cols)
    stored: dict[Any, bytes] = {}
    for lo in range(0, 3_000, 250):
        rows = np.arange(lo, lo + 250)
        _, new = b.score_batch_features(p.take(rows), {a: stored.get(a) for a in set(p.account[rows].tolist())})
        stored.update(new)
    states = state_codec.load(stored)
    assert state_codec.encode_states(states) == [stored[a] for a in states.accounts]
