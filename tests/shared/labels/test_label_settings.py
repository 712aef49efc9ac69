"""The labels' settings: defaults, the stores following BEHAVIOUR_STATE, ranges and errors naming the setting."""

from __future__ import annotations

import pytest

from shared.behaviour import merchants
from shared.settings import Settings, SettingsError

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    """Cosmos DB stores in the `labels` and `merchants` containers, a 7-day delay."""
    s = Settings.from_env({})
    assert (s.label_store, s.merchant_state) == ("cosmos", "cosmos")
    assert (s.labels_container, s.merchants_container) == ("labels", "merchants")
    assert s.merchant_risk_delay_days == merchants.DEFAULT_DELAY_DAYS == 7
    assert Settings() == s


def test_stores_follow_behaviour_state_unless_set() -> None:
    """Unset, LABEL_STORE and MERCHANT_STATE are BEHAVIOUR_STATE's value; set, their own."""
    s = Settings.from_env({"BEHAVIOUR_STATE": "memory"})
    assert (s.label_store, s.merchant_state) == ("memory", "memory")
    s = Settings.from_env({"BEHAVIOUR_STATE": "memory", "LABEL_STORE": " Cosmos ", "MERCHANT_STATE": "off"})
    assert (s.label_store, s.merchant_state) == ("cosmos", "off")
    s = Settings.from_env({"COSMOS_LABELS_CONTAINER": "l2", "COSMOS_MERCHANTS_CONTAINER": "m2"})
    assert (s.labels_container, s.merchants_container) == ("l2", "m2")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"LABEL_STORE": "redis"}, "LABEL_STORE"),
        ({"MERCHANT_STATE": "sqlite"}, "MERCHANT_STATE"),
        ({"MERCHANT_RISK_DELAY_DAYS": "-1"}, "MERCHANT_RISK_DELAY_DAYS"),
        ({"MERCHANT_RISK_DELAY_DAYS": str(merchants.MAX_DELAY_DAYS + 1)}, "MERCHANT_RISK_DELAY_DAYS"),
        ({"MERCHANT_RISK_DELAY_DAYS": "seven"}, "MERCHANT_RISK_DELAY_DAYS"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], name: str) -> None:
    """A bad value fails fast with the setting's name."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_delay_range_is_inclusive() -> None:
    """0 and MAX_DELAY_DAYS are both allowed."""
    assert Settings.from_env({"MERCHANT_RISK_DELAY_DAYS": "0"}).merchant_risk_delay_days == 0
    top = Settings.from_env({"MERCHANT_RISK_DELAY_DAYS": str(merchants.MAX_DELAY_DAYS)})
    assert top.merchant_risk_delay_days == merchants.MAX_DELAY_DAYS
