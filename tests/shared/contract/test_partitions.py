"""shared.contract.partitions: Event Hubs' partition-key hash, grouping records by partition."""

from __future__ import annotations

import pytest

from shared.contract.partitions import group_by_partition, hash_code, partition_for_key
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


def test_grouping_by_a_key_keeps_input_order() -> None:
    """With `key`, any item groups by the partition of its key; each group keeps the input order."""
    accounts = [str(r["account_id"]) for r in _RECORDS]
    groups = group_by_partition(range(len(accounts)), PARTITIONS, key=accounts.__getitem__)
    assert sorted(i for group in groups.values() for i in group) == list(range(len(accounts)))
    for partition, indices in groups.items():
        assert indices == sorted(indices)
        assert {partition_for_key(accounts[i], PARTITIONS) for i in indices} == {partition}
    by_record = group_by_partition(_RECORDS, PARTITIONS)
    assert {p: [r["id"] for r in g] for p, g in by_record.items()} == {
        p: [_RECORDS[i]["id"] for i in g] for p, g in groups.items()
    }
