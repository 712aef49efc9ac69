"""shared.contract.envelopes: the partition-key hash, grouping by account partition, packing under the limits."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract.envelopes import (
    MAX_ENVELOPE_BYTES,
    RecordTooLargeError,
    group_by_partition,
    hash_code,
    pack_encoded,
    pack_envelopes,
    partition_for_key,
)
from shared.contract.schema import ENVELOPE_FIELD, is_envelope
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

PARTITIONS = [str(i) for i in range(8)]
_RECORDS = TransactionGenerator(seed=5150).generate(3000)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # The Azure SDK for .NET's own stability cases (PartitionResolverTests.PartitionHashTestCases).
        ("7", -15263),
        ("131", 30562),
        ("7149583486996073602", 12977),
        ("FWfAT", -22341),
        ("sOdeEAsyQoEuEFPGerWO", -6503),
        ("FAyAIctPeCgmiwLKbJcyswoHglHVjQdvtBowLACDNORsYvOcLddNJYDmhAVkbyLOrHTKLneMNcbgWVlasVywOByANjs", 5226),
        (
            "1XYM6!(7(lF5wq4k4m*e$Nc!1ezLJv*1YK1Y-C^*&B$O)lq^iUkG(TNzXG;Zi#z2Og*Qq0#^*k):vXh$3,C7We7%W0meJ;b3,rQCg^J;^twXgs5E$$hWKxqp",
            23950,
        ),
        (
            "E(x;RRIaQcJs*P;D&jTPau-4K04oqr:lF6Z):ERpo&;9040qyV@G1_c9mgOs-8_8/10Fwa-7b7-yP!T-!IH&968)FWuI;(^g$2fN;)HJ^^yTn:",
            -29304,
        ),
        ("!c*_!I@1^c", 15372),
        ("p4*!jioeO/z-!-;w:dh", -3104),
        ("$0cb", 26269),
        ("-4189260826195535198", 453),
    ],
)
def test_hash_code_matches_the_event_hubs_sdk(key: str, expected: int) -> None:
    """The partition-key hash equals the value the Azure SDKs pin for the service's algorithm."""
    assert hash_code(key) == expected


def test_partition_uses_the_absolute_truncated_remainder() -> None:
    """C#'s `Math.Abs(hash % n)`: a negative hash picks |hash| mod n, not Python's floored modulo."""
    # hash("7") = -15263; 15263 % 8 = 7, whereas Python's -15263 % 8 would give 1.
    assert partition_for_key("7", PARTITIONS) == "7"
    assert partition_for_key("131", PARTITIONS) == str(30562 % 8)
    with pytest.raises(ValueError, match="no partitions"):
        partition_for_key("7", [])


def test_accounts_spread_over_partitions() -> None:
    """Generated accounts reach every partition (the hash is not degenerate on `acct-NNNNNN` ids)."""
    groups = group_by_partition(_RECORDS, PARTITIONS)
    assert set(groups) == set(PARTITIONS)


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
