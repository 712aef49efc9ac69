"""Print the columns of the Power BI streaming semantic model the app publishes to, and check its push URL.

    python -m tools.provision_powerbi schema
    python -m tools.provision_powerbi check --push-url-env POWERBI_PUSH_URL

The app (shared/publishing/rows.py) posts rows without an Entra token, to a push URL whose `key` query
parameter is the secret. Microsoft documents such keyed URLs only for streaming semantic models created
in the Power BI website ("Streaming semantic models created by using the Power BI service UI don't
require Microsoft Entra authentication ... the semantic model owner receives a URL with a rowkey",
learn.microsoft.com/power-bi/connect-data/service-real-time-streaming). So the model is created by hand
there (docs/deploy.md, "Power BI"): source **API**, **Historic data analysis on** (without it the model is
streaming-only: no reports, 15 KB per request), and the columns `schema` prints.

There is no `create` subcommand any more. It made a REST push dataset, and every POST to one needs an
Entra bearer token, which the app never sends: its rows would not have arrived.

`check` reads the URL from an environment variable, so it never lands in shell history, refuses URL
forms the app cannot use, and pushes one row with id `provisioning-check` (filter it out of reports).
HTTP goes through urllib with an injectable opener, so tests can stand in for Power BI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TextIO

from shared.loopback import is_loopback_host
from shared.publishing.rows import ROW_SCHEMA

CHECK_ID: Final = "provisioning-check"
DEFAULT_MODEL: Final = "Fraud scoring"

UI_TYPES: Final[Mapping[str, str]] = {
    "String": "Text",
    "Int64": "Number",
    "Double": "Number",
    "DateTime": "DateTime",
    "Boolean": "Boolean",
}
"""API data type -> the type to pick in the website's form, which names them Text, Number and DateTime
(microsoft/PowerBI-CSharp PR #35). Boolean is offered there as far as we know; not confirmed here."""


class Opener(Protocol):
    """The slice of `urllib.request.OpenerDirector` used here; tests pass a stand-in."""

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = ...) -> Any: ...


class PushURLError(ValueError):
    """The URL is not a keyed push URL the app can post to; the message never repeats the key."""


def sample_row(now: datetime | None = None) -> dict[str, Any]:
    """One row of every ROW_SCHEMA type, marked so it is easy to find and filter out of a report."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    values = {"String": CHECK_ID, "DateTime": stamp, "Double": 0.0, "Int64": 0, "Boolean": False}
    return {name: values[kind] for name, kind in ROW_SCHEMA.items()}


def validate_push_url(url: str) -> str:
    """The URL's host, if it has the shape of a keyed push URL; `PushURLError` naming what is wrong otherwise."""
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.hostname or ""
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
        raise PushURLError("the push URL must start with https:// (the key in it would travel in clear text)")
    if "/tables/" in parts.path:
        raise PushURLError(
            "this is a REST rows endpoint (.../tables/<table>/rows): it needs an Entra token on every POST, which "
            "the app does not send; create the model in the Power BI website and copy its Push URL"
        )
    if not parts.path.endswith("/rows"):
        raise PushURLError(
            "the push URL ends in .../datasets/<id>/rows?key=...; copy it whole from the model's API info"
        )
    if not urllib.parse.parse_qs(parts.query).get("key"):
        raise PushURLError("the push URL has no key= parameter; copy it whole from the model's API info")
    return host


_HINTS: Final[Mapping[int, str]] = {
    400: "the model's columns do not match `python -m tools.provision_powerbi schema` (names are case-sensitive)",
    401: "the key was refused: copy the push URL again, or reset the key in the model's API info",
    403: "the key was refused: copy the push URL again, or reset the key in the model's API info",
    404: "no such model: it was deleted, or the URL is cut short",
    429: "Power BI is throttling this model: wait a minute (or an hour, over 1,000,000 rows) and retry",
}


def _error_code(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def check_push_url(url: str, *, opener: Opener | None = None, timeout_s: float = 30.0) -> None:
    """POST one sample row as the app does (a JSON array, no token); raise `PushURLError` if refused."""
    host = validate_push_url(url)
    body = json.dumps([sample_row()]).encode()
    request = urllib.request.Request(
        url.strip(), data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        code = _error_code(exc.read())
        exc.close()
        hint = _HINTS.get(exc.code, "unexpected answer")
        raise PushURLError(f"power bi at {host} answered HTTP {exc.code} {code}".rstrip() + f": {hint}") from None
    except urllib.error.URLError as exc:
        raise PushURLError(f"could not reach {host}: {type(exc.reason).__name__}") from None


def schema_text() -> str:
    """What to type into the website's New streaming semantic model form, and the JSON it should show."""
    width = max(len(n) for n in ROW_SCHEMA)
    rows = "\n".join(f"  {n.ljust(width)}  {UI_TYPES[t]:<8}  ({t})" for n, t in ROW_SCHEMA.items())
    return (
        f"Power BI website: workspace > New > Streaming semantic model > API. Name it {DEFAULT_MODEL!r}, add\n"
        "these values in this order (name, type to pick, API type), turn Historic data analysis ON, Create:\n"
        f"{rows}\n\n"
        "The form's sample JSON should then read like this row (the app sends an array of them):\n"
        f"{json.dumps([sample_row(datetime(2026, 1, 1, tzinfo=UTC))], indent=2)}"
    )


def parser() -> argparse.ArgumentParser:
    """Subcommands: schema, check."""
    p = argparse.ArgumentParser(prog="python -m tools.provision_powerbi", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="print the model's columns for the website's form; no network")
    check = sub.add_parser("check", help="push one marked row to a push URL, as the app does")
    check.add_argument(
        "--push-url-env", metavar="NAME", required=True, help="environment variable holding the push URL"
    )
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    opener: Opener | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run one subcommand; 0 on success, 1 when the URL is unusable or Power BI refused the row."""
    p = parser()
    args = p.parse_args(argv)
    if args.command == "schema":
        print(schema_text(), file=out)
        return 0
    url = os.environ.get(args.push_url_env, "").strip()
    if not url:
        p.error(f"${args.push_url_env} is empty")
    try:
        check_push_url(url, opener=opener)
    except PushURLError as exc:
        print(f"push URL not usable: {exc}", file=err)
        return 1
    print(f"push URL accepted a row with id {CHECK_ID!r}; the app can publish to it", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
