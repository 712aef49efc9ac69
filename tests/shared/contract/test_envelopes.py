"""shared.contract.envelopes: envelopes that keep each account on one partition, packed under the limits."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract.envelopes import MAX_ENVELOPE_BYTES, RecordTooLargeError, pack_encoded, pack_envelopes
from shared.contract.partitions import partition_for_key
from shared.contract.schema import ENVELOPE_FIELD, is_envelope
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

PARTITIONS = [str(i) for i in range(8)]
_RECORDS = TransactionGenerator(seed=5150).generate(3000)


def test_packing_keeps_accounts_on_one_partition_in_order() -> None:
    """Every record once; each envelope one partition; each account on one partition, in input order."""
    envelopes = pack_envelopes(_RECORDS, 100, PARTITIONS)
    seen: list[str] = []
    per_account: dict[str, list[str]] = defaultdict(list)
    partition_of: dict[str, set[str]] = defaultdict(set)
    for envelope in envelopes:
        decoded = orjson.loads(envelope.body)
        assert is_envelope(decoded)
        records = decoded[ENVELOPE_FIELD]
        assert len(records) == envelope.records <= 100
        assert len(envelope.body) <= MAX_ENVELOPE_BYTES
        for record in records:
            assert partition_for_key(record["account_id"], PARTITIONS) == envelope.partition_id
            seen.append(record["id"])
            per_account[record["account_id"]].append(record["id"])
            partition_of[record["account_id"]].add(envelope.partition_id)
    assert sorted(seen) == sorted(r["id"] for r in _RECORDS)
    expected: dict[str, list[str]] = defaultdict(list)
    for record in _RECORDS:
        expected[record["account_id"]].append(record["id"])
    assert per_account == expected
    assert all(len(p) == 1 for p in partition_of.values())


def test_one_record_per_event_sends_bare_transactions() -> None:
    """records_per_event=1 keeps today's form: each body is the transaction itself."""
    envelopes = pack_envelopes(_RECORDS[:50], 1, PARTITIONS)
    assert len(envelopes) == 50
    assert all(e.records == 1 and not is_envelope(orjson.loads(e.body)) for e in envelopes)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), max_size=60),
    per_event=st.integers(min_value=1, max_value=20),
    limit=st.integers(min_value=320, max_value=2000),
)
def test_pack_encoded_respects_both_limits(sizes: list[int], per_event: int, limit: int) -> None:
    """Bodies never pass the byte limit or the record count, keep order, and close only when the next would not fit."""
    encoded = [orjson.dumps("x" * max(0, n - 2)) for n in sizes]
    events = pack_encoded(encoded, per_event, limit)
    flat: list[bytes] = []
    for body, count in events:
        assert len(body) <= limit
        assert 1 <= count <= per_event
        items = [body] if per_event == 1 else [orjson.dumps(r) for r in orjson.loads(body)[ENVELOPE_FIELD]]
        assert len(items) == count
        flat += items
    assert flat == encoded
    for (body, count), (following, _) in pairwise(events):
        if per_event > 1 and count < per_event:
            first_next = orjson.dumps(orjson.loads(following)[ENVELOPE_FIELD][0])
            assert len(body) + 1 + len(first_next) > limit


def test_a_record_too_large_for_any_event_is_refused() -> None:
    """No event could carry it: say so rather than send an event Event Hubs would refuse."""
    with pytest.raises(RecordTooLargeError, match="record 1"):
        pack_encoded([b"{}", b'"' + b"x" * 2000 + b'"'], 10, 1000)
    with pytest.raises(ValueError, match="at least 1"):
        pack_encoded([b"{}"], 0)


def test_full_envelopes_stay_under_one_megabyte() -> None:
    """At 2,000 records per event generator transactions fill about 0.9 MB; the byte ceiling closes them first."""
    records = TransactionGenerator(seed=9).generate(6000)
    envelopes = pack_envelopes(records, 2000, ["0"])
    assert all(len(e.body) <= MAX_ENVELOPE_BYTES for e in envelopes)
    assert sum(e.records for e in envelopes) == 6000
