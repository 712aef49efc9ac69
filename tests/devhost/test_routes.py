"""Route templates as the Functions host matches them: literals without regard to case, parameters, constraints."""

from __future__ import annotations

import pytest

from devhost.routes import RouteError, RouteTemplate, join, ordered

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/score", "/api/score", {}),
        ("api/score", "/API/Score/", {}),
        ("api/score", "/api/score/extra", None),
        ("api/score", "/api", None),
        ("api/labels/{id}", "/api/labels/tx-1", {"id": "tx-1"}),
        ("api/labels/{id}", "/api/labels/a%20b", {"id": "a b"}),
        ("api/labels/{id}", "/api/labels", None),
        ("api/labels/{id?}", "/api/labels", {}),
        ("api/labels/{id=latest}", "/api/labels", {"id": "latest"}),
        ("api/labels/{id:int}", "/api/labels/42", {"id": "42"}),
        ("api/labels/{id:int}", "/api/labels/x42", None),
        ("api/labels/{id:int}", "/api/labels/99999999999", None),
        ("api/labels/{id:long}", "/api/labels/99999999999", {"id": "99999999999"}),
        ("api/labels/{id:int:min(1)}", "/api/labels/0", None),
        ("api/labels/{id:range(1,5)}", "/api/labels/5", {"id": "5"}),
        ("api/labels/{name:alpha:maxlength(3)}", "/api/labels/abcd", None),
        ("api/labels/{flag:bool}", "/api/labels/TRUE", {"flag": "TRUE"}),
        ("api/labels/{g:guid}", "/api/labels/not-a-guid", None),
        ("api/labels/{code:regex(^[a-z]{{2}}$)}", "/api/labels/ab", {"code": "ab"}),
        ("api/files/{*path}", "/api/files/a/b/c", {"path": "a/b/c"}),
        ("api/files/{*path}", "/api/files", {}),
        ("score", "/score", {}),
    ],
)
def test_match(template: str, path: str, expected: dict[str, str] | None) -> None:
    """Each template matches exactly the paths ASP.NET Core routing would, with these route values."""
    assert RouteTemplate(template).match(path) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("api/{id:money}", "does not support the constraint 'money'"),
        ("api/{a}.{b}", "must be a literal or one {parameter}"),
        ("api/{*rest}/more", "catch-all parameter must be the last segment"),
        ("api/{id:min(x)}", "bad argument"),
    ],
)
def test_templates_the_local_host_cannot_serve_are_refused(template: str, message: str) -> None:
    """A template the local host would match differently from Azure refuses to load, naming the route."""
    with pytest.raises(RouteError, match="route") as caught:
        RouteTemplate(template)
    assert message in str(caught.value)


def test_prefix_join_and_precedence() -> None:
    """The route prefix joins with one slash (none when empty); literal segments are tried before parameters."""
    assert join("api", "score") == "api/score"
    assert join("/api/", "/score/") == "api/score"
    assert join("", "score") == "score"
    templates = [RouteTemplate("api/{*rest}"), RouteTemplate("api/{id}"), RouteTemplate("api/latest")]
    assert [t.template for t in ordered(templates)] == ["api/latest", "api/{id}", "api/{*rest}"]
