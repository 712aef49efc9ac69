"""tools.provision_powerbi: the columns for the website's form, and `check` against the local Power BI stand-in."""

from __future__ import annotations

import io
import json

import pytest

from shared.publishing.rows import ROW_SCHEMA
from tests.fakes.powerbi_server import DEFAULT_KEY, FakePowerBI
from tools.provision_powerbi import (
    CHECK_ID,
    UI_TYPES,
    PushURLError,
    check_push_url,
    main,
    parser,
    sample_row,
    schema_text,
    validate_push_url,
)

pytestmark = pytest.mark.unit

GOOD = "https://api.powerbi.com/beta/tenant/datasets/ds/rows?experience=power-bi&key=abc%3D"


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_there_is_no_create_any_more() -> None:
    """`create` made a REST push dataset, which takes rows only with an Entra token the app never sends
    (AZURE-REVIEW.md Power BI A1); its path is removed, with the schema checks and the retention flag."""
    help_text = parser().format_help()
    assert "{schema,check}" in help_text
    with pytest.raises(SystemExit):
        parser().parse_args(["create", "--workspace", "w"])


def test_schema_names_the_form_types_for_every_column() -> None:
    """Each ROW_SCHEMA column with the type the website's form calls it (Text/Number/DateTime/Boolean)."""
    text = schema_text()
    for name, api_type in ROW_SCHEMA.items():
        assert f"{UI_TYPES[api_type]:<8}  ({api_type})" in text.split(f"  {name} ", 1)[1].splitlines()[0]
    assert "Historic data analysis ON" in text
    assert set(UI_TYPES.values()) == {"Text", "Number", "DateTime", "Boolean"}
    sample = json.loads(text.split("like this row (the app sends an array of them):\n", 1)[1])
    assert list(sample[0]) == list(ROW_SCHEMA)


def test_sample_row_matches_the_schema_and_is_marked() -> None:
    """The check row has every column, with a value of its type, and the id reports filter on."""
    row = sample_row()
    assert list(row) == list(ROW_SCHEMA)
    assert row["id"] == CHECK_ID
    assert row["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://api.powerbi.com/beta/t/datasets/d/rows?key=s3cret", "https"),
        ("https://api.powerbi.com/v1.0/myorg/groups/g/datasets/d/tables/T/rows?key=s3cret", "Entra token"),
        ("https://api.powerbi.com/beta/t/datasets/d?key=s3cret", "ends in"),
        ("https://api.powerbi.com/beta/t/datasets/d/rows", "no key="),
        ("https://api.powerbi.com/beta/t/datasets/d/rows?key=", "no key="),
    ],
)
def test_urls_the_app_cannot_use_are_refused_without_echoing_the_key(url: str, problem: str) -> None:
    """Plain http, a REST rows endpoint (token only), a cut-short URL, a missing key: each named."""
    with pytest.raises(PushURLError, match=problem) as caught:
        validate_push_url(url)
    assert "s3cret" not in str(caught.value)


def test_a_website_push_url_passes() -> None:
    """The shape Power BI hands out: /beta/<tenant>/datasets/<id>/rows?...&key=..."""
    assert validate_push_url(GOOD) == "api.powerbi.com"


def test_check_pushes_one_array_row_without_a_token() -> None:
    """`check` posts exactly what the app posts: a JSON array of one ROW_SCHEMA row, no Authorization."""
    with FakePowerBI(schema=ROW_SCHEMA) as fake:
        check_push_url(fake.url)
        assert [r["id"] for r in fake.rows] == [CHECK_ID]
        assert [p.status for p in fake.posts] == [200]


def test_check_explains_a_refusal() -> None:
    """A wrong key is a 403 with a hint, and the key is never printed."""
    with FakePowerBI(key="right") as fake:
        wrong = fake.url.replace("key=right", "key=wrong-key")
        with pytest.raises(PushURLError, match=r"HTTP 403.*key was refused") as caught:
            check_push_url(wrong)
    assert "wrong-key" not in str(caught.value)


def test_check_names_a_column_mismatch() -> None:
    """A model whose columns differ (here: one missing) answers 400; the hint points at `schema`."""
    narrower = {k: v for k, v in ROW_SCHEMA.items() if k != "top_reason"}
    with FakePowerBI(schema=narrower) as fake, pytest.raises(PushURLError, match=r"HTTP 400.*schema"):
        check_push_url(fake.url)


def test_main_reads_the_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 0 and a confirmation for a good URL; 1 with the reason on stderr for a bad one."""
    with FakePowerBI() as fake:
        monkeypatch.setenv("PBI_URL", fake.url)
        status, out, err = _run(["check", "--push-url-env", "PBI_URL"])
        assert (status, err) == (0, "")
        assert CHECK_ID in out
        monkeypatch.setenv("PBI_URL", fake.url.replace(DEFAULT_KEY, "nope"))
        status, out, err = _run(["check", "--push-url-env", "PBI_URL"])
    assert status == 1
    assert "HTTP 403" in err
    assert "nope" not in err + out


def test_main_refuses_an_empty_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable is a usage error, not a POST to nowhere."""
    monkeypatch.delenv("PBI_URL", raising=False)
    with pytest.raises(SystemExit) as caught:
        _run(["check", "--push-url-env", "PBI_URL"])
    assert caught.value.code == 2
