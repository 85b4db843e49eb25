"""A fast validator for call records, compiled from the JSON Schema in `schemas/`.

Ingest validates every record, so a generic JSON Schema library (about 19 µs a record) would
cap the whole pipeline. This compiles the subset of keywords the contract uses into one
generated Python function (a few µs a record). A keyword outside that subset is a
compile-time error, so the schema and the validator cannot drift apart silently; the tests
also check it against a reference implementation.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas import call_record_schema

Validator = Callable[[Any], str | None]

_SUPPORTED = {
    "type", "minLength", "maxLength", "pattern", "minimum", "maximum", "const", "format",
    "anyOf", "description", "maxProperties", "propertyNames", "additionalProperties",
}
_IP_CACHE: dict[str, bool] = {}


def _valid_ip(value: str, version: int) -> bool:
    """Addresses repeat a lot in API traffic, so parsed answers are memoised (bounded)."""
    key = f"{version}{value}"
    known = _IP_CACHE.get(key)
    if known is None:
        try:
            known = ipaddress.ip_address(value).version == version
        except ValueError:
            known = False
        if len(_IP_CACHE) > 100_000:
            _IP_CACHE.clear()
        _IP_CACHE[key] = known
    return known


def _valid_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return True


_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _valid_datetime,
    "ipv4": lambda v: _valid_ip(v, 4),
    "ipv6": lambda v: _valid_ip(v, 6),
}


class _Codegen:
    """Turns each property's schema into `if <failure>: return <reason>` lines.

    Generated straight-line code runs the ~20 checks of a record in one Python frame instead of
    dozens of closure calls; values the code needs (compiled patterns, format tests) are bound by
    name in the function's namespace.
    """

    def __init__(self) -> None:
        self.names: dict[str, Any] = {"_is_num": lambda v: type(v) in (int, float)}
        self.lines: list[str] = []

    def bind(self, value: Any) -> str:
        name = f"_k{len(self.names)}"
        self.names[name] = value
        return name

    def fail(self, indent: str, condition: str, reason: str) -> None:
        self.lines.append(f"{indent}if {condition}: return {reason!r}")

    def value(self, indent: str, var: str, label: str, spec: dict[str, Any]) -> None:
        unknown = set(spec) - _SUPPORTED
        if unknown:
            raise ValueError(f"contract keyword(s) {sorted(unknown)} on {label!r} are not supported")
        kind = spec.get("type")
        if kind is not None:
            self.fail(indent, _TYPE_TESTS[kind].format(v=var), f"{label} must be of type {kind}")
        if "const" in spec:
            self.fail(indent, f"{var} != {self.bind(spec['const'])}", f"{label} must be {spec['const']!r}")
        self._bounds(indent, var, label, spec)
        self._formats(indent, var, label, spec)
        if kind == "object":
            self._entries(indent, var, label, spec)

    def _bounds(self, indent: str, var: str, label: str, spec: dict[str, Any]) -> None:
        if "minLength" in spec:
            self.fail(indent, f"len({var}) < {spec['minLength']}",
                      f"{label} must have at least {spec['minLength']} character(s)")
        if "maxLength" in spec:
            self.fail(indent, f"len({var}) > {spec['maxLength']}",
                      f"{label} must have at most {spec['maxLength']} characters")
        if "pattern" in spec:
            rx = self.bind(re.compile(spec["pattern"]).search)
            self.fail(indent, f"{rx}({var}) is None", f"{label} does not match {spec['pattern']}")
        if "minimum" in spec:
            self.fail(indent, f"{var} < {spec['minimum']}", f"{label} must be >= {spec['minimum']}")
        if "maximum" in spec:
            self.fail(indent, f"{var} > {spec['maximum']}", f"{label} must be <= {spec['maximum']}")
        if "maxProperties" in spec:
            self.fail(indent, f"len({var}) > {spec['maxProperties']}",
                      f"{label} must have at most {spec['maxProperties']} entries")

    def _formats(self, indent: str, var: str, label: str, spec: dict[str, Any]) -> None:
        formats = [spec["format"]] if "format" in spec else []
        formats += [alt["format"] for alt in spec.get("anyOf", [])]
        if formats:
            tests = " or ".join(f"{self.bind(_FORMATS[f])}({var})" for f in formats)
            self.fail(indent, f"not ({tests})", f"{label} is not a valid {' or '.join(formats)}")

    def _entries(self, indent: str, var: str, label: str, spec: dict[str, Any]) -> None:
        names = spec.get("propertyNames")
        values = spec.get("additionalProperties")
        if names is None and not isinstance(values, dict):
            return
        key, val = f"{var}_k", f"{var}_v"
        self.lines.append(f"{indent}for {key}, {val} in {var}.items():")
        if names is not None:
            self.value(indent + "    ", key, f"{label} key", {"type": "string", **names})
        if isinstance(values, dict):
            self.value(indent + "    ", val, f"{label} value", values)


_TYPE_TESTS = {
    "string": "type({v}) is not str",
    "integer": "type({v}) is not int",
    "number": "not _is_num({v})",
    "boolean": "type({v}) is not bool",
    "object": "type({v}) is not dict",
}


def compile_validator(schema: dict[str, Any]) -> Validator:
    """Build `validate(record) -> None | reason`; reasons name the field and what to fix.

    A property that is absent or null is not checked (null stands for "not given"); required
    properties must be present and non-null.
    """
    gen = _Codegen()
    gen.lines += ["def validate(r):", "    if type(r) is not dict: return 'record must be a JSON object'"]
    for prop in schema.get("required", ()):
        gen.fail("    ", f"r.get({prop!r}) is None", f"{prop} is required")
    for i, (prop, spec) in enumerate(schema["properties"].items()):
        var = f"v{i}"
        gen.lines.append(f"    {var} = r.get({prop!r})")
        gen.lines.append(f"    if {var} is not None:")
        before = len(gen.lines)
        gen.value("        ", var, prop, spec)
        if len(gen.lines) == before:
            gen.lines.append("        pass")
    gen.lines.append("    return None")
    exec("\n".join(gen.lines), gen.names)  # noqa: S102 - code generated from our own schema file
    return gen.names["validate"]


def call_record_validator(version: int = 1) -> Validator:
    """The validator ingest and the emitter use for contract `version`."""
    return compile_validator(call_record_schema(version))
