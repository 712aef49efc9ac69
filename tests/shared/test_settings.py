"""Settings parsing: defaults, ranges, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import DEFAULT_MODEL_DIR, Settings, SettingsError

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    """An empty environment gives safe defaults: timer off, publishing off, bundled model."""
    s = Settings.from_env({})
    assert s.max_generate_count == 1000
    assert s.fraud_rate == pytest.approx(0.10)
    assert s.generator_seed is None
    assert s.timer_count == 0
    assert s.model_dir == DEFAULT_MODEL_DIR
    assert s.threshold_override is None
    assert s.powerbi_push_url is None
    assert not s.powerbi_url_unresolved
    assert not s.powerbi_flagged_only
    assert s.records_per_event == 1
    assert s.event_hub_partition_count == 4
    assert s.max_event_bytes == 1_048_576
    assert s.max_records_per_envelope == 5000
    assert s.fast_enqueued_time


def test_envelope_settings_are_parsed() -> None:
    """Records per event, partition count, envelope limits and the enqueued-time parser switch."""
    s = Settings.from_env(
        {
            "GENERATOR_RECORDS_PER_EVENT": "100",
            "EVENT_HUB_PARTITION_COUNT": "32",
            "MAX_EVENT_BYTES": "262144",
            "MAX_RECORDS_PER_ENVELOPE": "250",
            "ENQUEUED_TIME_PARSER": " Library ",
        }
    )
    assert (s.records_per_event, s.event_hub_partition_count) == (100, 32)
    assert (s.max_event_bytes, s.max_records_per_envelope) == (262_144, 250)
    assert not s.fast_enqueued_time


def test_behaviour_state_settings() -> None:
    """The state store defaults to Cosmos DB's `profiles` container; memory and off are the alternatives."""
    default = Settings.from_env({})
    assert (default.behaviour_state, default.cosmos_database, default.profiles_container) == (
        "cosmos",
        "fraud",
        "profiles",
    )
    s = Settings.from_env({"BEHAVIOUR_STATE": "Memory", "COSMOS_DATABASE": "db2", "COSMOS_PROFILES_CONTAINER": "p"})
    assert (s.behaviour_state, s.cosmos_database, s.profiles_container) == ("memory", "db2", "p")
    with pytest.raises(SettingsError, match="BEHAVIOUR_STATE"):
        Settings.from_env({"BEHAVIOUR_STATE": "redis"})


def test_values_are_parsed() -> None:
    """Every setting is read and typed."""
    s = Settings.from_env(
        {
            "GENERATE_MAX_COUNT": "50",
            "GENERATOR_FRAUD_RATE": "0.25",
            "GENERATOR_SEED": "7",
            "GENERATOR_TIMER_COUNT": "12",
            "MODEL_DIR": "/models/v2",
            "FRAUD_THRESHOLD": "0.4",
            "POWERBI_PUSH_URL": " https://api.powerbi.com/beta/t/datasets/d/rows?key=k ",
            "POWERBI_TIMEOUT_SECONDS": "3.5",
            "POWERBI_PUBLISH": "Flagged",
        }
    )
    assert s.powerbi_flagged_only
    assert (s.max_generate_count, s.fraud_rate, s.generator_seed, s.timer_count) == (50, 0.25, 7, 12)
    assert s.model_dir == Path("/models/v2")
    assert s.threshold_override == pytest.approx(0.4)
    assert s.powerbi_push_url == "https://api.powerbi.com/beta/t/datasets/d/rows?key=k"
    assert s.powerbi_timeout_s == pytest.approx(3.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GENERATE_MAX_COUNT", "many"),
        ("GENERATE_MAX_COUNT", "0"),
        ("GENERATOR_FRAUD_RATE", "1.5"),
        ("GENERATOR_SEED", "-1"),
        ("FRAUD_THRESHOLD", "abc"),
        ("POWERBI_TIMEOUT_SECONDS", "0"),
        ("POWERBI_PUBLISH", "some"),
        ("GENERATOR_RECORDS_PER_EVENT", "0"),
        ("EVENT_HUB_PARTITION_COUNT", "0"),
        ("MAX_EVENT_BYTES", "2097152"),
        ("MAX_EVENT_BYTES", "100"),
        ("MAX_RECORDS_PER_ENVELOPE", "0"),
        ("ENQUEUED_TIME_PARSER", "fastest"),
    ],
)
def test_bad_value_names_the_setting(name: str, value: str) -> None:
    """A bad value fails fast with a message that names the setting and the value."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_unresolved_key_vault_reference_turns_publishing_off() -> None:
    """The literal Key Vault reference is never used as a URL."""
    s = Settings.from_env({"POWERBI_PUSH_URL": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/x/)"})
    assert s.powerbi_push_url is None
    assert s.powerbi_url_unresolved
