"""The Functions host's HTTP route templates: parsed once, matched against a request path.

The host registers each HTTP function under `<routePrefix>/<route>` with ASP.NET Core routing, whose
template syntax the `route` of an `httpTrigger` binding uses: literal segments (matched without
regard to case), `{name}`, `{name?}` (optional), `{name=default}`, `{name:constraint}` (several
constraints chain, `{id:int:min(1)}`) and a final catch-all `{*rest}`. The route values become the
request's `params` in the host's `RpcHttp`. Constraints supported here are ASP.NET's inline ones
that fit a function's route; an unknown one refuses the template when the local host starts,
rather than silently matching more than Azure would.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

_PARAMETER = re.compile(r"^\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>.*)\}$")
_CONSTRAINT = re.compile(r":(?P<name>[A-Za-z]+)(?:\((?P<arg>[^)]*)\))?")


class RouteError(ValueError):
    """A route template the local host cannot serve as the Functions host would; the message says why."""


def _number(cast: Callable[[str], object]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            cast(value)
        except ValueError:
            return False
        return True

    return check


def _guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_SIMPLE: Mapping[str, Callable[[str], bool]] = {
    "int": lambda v: re.fullmatch(r"-?\d+", v) is not None and -(2**31) <= int(v) < 2**31,
    "long": lambda v: re.fullmatch(r"-?\d+", v) is not None and -(2**63) <= int(v) < 2**63,
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": _guid,
    "double": _number(float),
    "float": _number(float),
    "decimal": _number(float),
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
}


def _constraint(name: str, arg: str | None, template: str) -> Callable[[str], bool]:
    """One inline constraint as a predicate on the segment's (decoded) value."""
    key = name.lower()
    if arg is None and key in _SIMPLE:
        return _SIMPLE[key]
    if arg is not None:
        try:
            if key == "regex":
                pattern = re.compile(arg, re.IGNORECASE)
                return lambda v: pattern.search(v) is not None
            bounds = [int(a) for a in arg.split(",")]
        except (re.error, ValueError):
            raise RouteError(f"route {template!r}: constraint {name}({arg}) has a bad argument") from None
        if key in ("min", "max", "range") and len(bounds) == (2 if key == "range" else 1):
            low = bounds[0] if key != "max" else -(2**63)
            high = bounds[-1] if key != "min" else 2**63
            return lambda v: re.fullmatch(r"-?\d+", v) is not None and low <= int(v) <= high
        if key in ("minlength", "maxlength", "length") and len(bounds) in (1, 2):
            low = bounds[0] if key in ("minlength", "length") else 0
            high = bounds[-1] if key in ("maxlength", "length") else 2**31
            return lambda v: low <= len(v) <= high
    raise RouteError(f"route {template!r}: the local host does not support the constraint {name!r}")


@dataclass(frozen=True)
class _Segment:
    literal: str | None
    name: str = ""
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    checks: tuple[Callable[[str], bool], ...] = ()

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


def _segment(text: str, template: str) -> _Segment:
    if "{" not in text and "}" not in text:
        return _Segment(literal=text)
    match = _PARAMETER.match(text)
    inner = text[1:-1].replace("{{", "").replace("}}", "")
    if match is None or "{" in inner or "}" in inner:
        # ASP.NET allows several parameters in one segment ("{a}.{b}"); no function here needs it.
        raise RouteError(f"route {template!r}: segment {text!r} must be a literal or one {{parameter}}")
    rest = match["rest"]
    checks = []
    if ":regex(" in rest:
        # A regex may hold any character (braces doubled): it runs to the last ")", so it comes last.
        start, end = rest.index(":regex("), rest.rindex(")")
        pattern = rest[start + len(":regex(") : end].replace("{{", "{").replace("}}", "}")
        checks.append(_constraint("regex", pattern, template))
        rest = rest[:start] + rest[end + 1 :]
    default = None
    if "=" in rest:
        rest, default = rest.split("=", 1)
    optional = rest.endswith("?")
    rest = rest.removesuffix("?")
    position = 0
    for found in _CONSTRAINT.finditer(rest):
        if found.start() != position:
            break
        checks.append(_constraint(found["name"], found["arg"], template))
        position = found.end()
    if position != len(rest):
        raise RouteError(f"route {template!r}: cannot read {text!r}")
    return _Segment(
        literal=None,
        name=match["name"],
        optional=optional or match["star"] is not None,
        default=default,
        catch_all=match["star"] is not None,
        checks=tuple(checks),
    )


class RouteTemplate:
    """One route (route prefix included), matched segment by segment as ASP.NET Core routing does."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self._segments = [_segment(s, template) for s in self.template.split("/")] if self.template else []
        for i, segment in enumerate(self._segments):
            if segment.catch_all and i != len(self._segments) - 1:
                raise RouteError(f"route {template!r}: a catch-all parameter must be the last segment")

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: literal segments before constrained parameters, before plain ones, before catch-alls."""
        ranks = []
        for s in self._segments:
            if s.literal is not None:
                ranks.append(0)
            elif s.catch_all:
                ranks.append(3)
            else:
                ranks.append(1 if s.checks else 2)
        return tuple(ranks)

    def match(self, path: str) -> dict[str, str] | None:
        """The route values when `path` (without query string) matches, else None."""
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        values: dict[str, str] = {}
        for i, segment in enumerate(self._segments):
            if segment.catch_all:
                rest = "/".join(parts[i:])
                if rest:
                    values[segment.name] = rest
                elif segment.default is not None:
                    values[segment.name] = segment.default
                return values
            if i >= len(parts):
                if segment.literal is None and (segment.optional or segment.default is not None):
                    if segment.default is not None:
                        values[segment.name] = segment.default
                    continue
                return None
            part = parts[i]
            if segment.literal is not None:
                if part.lower() != segment.literal.lower():
                    return None
            elif not segment.accepts(part):
                return None
            else:
                values[segment.name] = part
        return values if len(parts) <= len(self._segments) else None


def join(prefix: str, route: str) -> str:
    """`<routePrefix>/<route>`, as the host joins them (an empty prefix adds nothing)."""
    return "/".join(p.strip("/") for p in (prefix, route) if p.strip("/"))


def ordered(templates: Sequence[RouteTemplate]) -> list[RouteTemplate]:
    """Templates in the order routing tries them: most specific first."""
    return sorted(templates, key=lambda t: t.precedence)
