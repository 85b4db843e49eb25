"""The call-record contract as msgspec types, built from the JSON Schema in `schemas/`.

Ingest validates every record, so validation is the largest per-record cost of the hot path.
A generic JSON Schema library took ~19 µs a record; `orjson.loads` plus a generated Python
validator ~12 µs. msgspec parses and checks in one pass of C (~5 µs): types, lengths, ranges,
patterns and entry counts become `Annotated[..., Meta(...)]` field types, and untyped properties
(`request`, `result`) are kept as `msgspec.Raw`, located but never built into Python objects.
A `date-time` is parsed by msgspec's RFC 3339 parser (C); the one format msgspec has no type
for, an IP address, is checked after, against a memo of addresses already seen. For message bytes
a date-time is located as `Raw` and parsed by the check (the same parser), so ingest can see how
it was written (ClickHouse refuses a lowercase `t`/`z` that RFC 3339 allows). `x-maxDepth` (the
nesting bound of an untyped property) and the rule that every string is valid Unicode are checked
on the property's JSON text (`schemas.json_text`), also without building it. `dependentRequired`
(gateway_id and gateway_seq come together) is checked after decoding too, two attribute reads.

The types are derived from the schema file, so the two cannot drift apart; a keyword outside the
supported subset is a compile-time error, and the tests check the result against a reference
JSON Schema implementation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson

from schemas import call_record_schema
from schemas.json_text import KEEP_OPENERS as _KEEP_OPENERS
from schemas.json_text import message_not_utf8, text_problem

Validator = Callable[[Any], str | None]
FormatCheck = Callable[..., str | None]

_SUPPORTED = {
    "type", "minLength", "maxLength", "pattern", "minimum", "maximum", "const", "format",
    "anyOf", "description", "maxProperties", "propertyNames", "additionalProperties", "x-maxDepth",
}
_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
_IP_CACHE: dict[str, int] = {}


def _ip_version(value: str) -> int:
    """Addresses repeat a lot in API traffic, so parsed answers are memoised (bounded)."""
    known = _IP_CACHE.get(value)
    if known is None:
        try:
            known = ipaddress.ip_address(value).version
        except ValueError:
            known = 0
        if len(_IP_CACHE) > 100_000:
            _IP_CACHE.clear()
        _IP_CACHE[value] = known
    return known


# Formats checked after decoding, as a set of the formats a property accepts (JSON Schema `anyOf`).
_FORMATS: dict[frozenset[str], Callable[[str], bool]] = {
    frozenset({"ipv4"}): lambda v: _ip_version(v) == 4,
    frozenset({"ipv6"}): lambda v: _ip_version(v) == 6,
    frozenset({"ipv4", "ipv6"}): lambda v: _ip_version(v) != 0,
}
# A date-time is a type of its own: msgspec's parser requires an offset and a real calendar date,
# which the pattern and the format say together (it also takes "+0000" and over 9 fraction digits,
# read the same way by ClickHouse), and takes ~0.1 µs where the pattern took ~1 µs.
_DATE_TIME = Annotated[datetime, msgspec.Meta(tz=True)]


def _meta(spec: dict[str, Any]) -> msgspec.Meta | None:
    """The JSON Schema bounds of one value as msgspec constraints (pattern: `re.search`, as in JSON Schema)."""
    names = {"minLength": "min_length", "maxLength": "max_length", "pattern": "pattern", "minimum": "ge",
             "maximum": "le", "maxProperties": "max_length"}
    found = {names[k]: v for k, v in spec.items() if k in names}
    return msgspec.Meta(**found) if found else None


def _value_type(label: str, spec: dict[str, Any], untyped: Any) -> Any:
    unknown = set(spec) - _SUPPORTED
    if unknown:
        raise ValueError(f"contract keyword(s) {sorted(unknown)} on {label!r} are not supported")
    kind = spec.get("type")
    if spec.get("format") == "date-time":
        return msgspec.Raw if untyped is msgspec.Raw else _DATE_TIME
    if "const" in spec:
        base: Any = Literal[spec["const"]]
    elif kind == "object":
        key = _value_type(f"{label} key", {"type": "string", **spec.get("propertyNames", {})}, untyped)
        value = spec.get("additionalProperties", True)
        base = dict[key, _value_type(f"{label} value", value, untyped) if isinstance(value, dict) else untyped]
    elif kind is None:
        return untyped
    else:
        base = _SCALARS[kind]
    meta = _meta(spec)
    return Annotated[base, meta] if meta is not None else base


def compile_struct(schema: dict[str, Any], untyped: Any = msgspec.Raw, name: str = "CallRecord"
                   ) -> type[msgspec.Struct]:
    """A Struct type whose decoding enforces the schema (formats and text bounds aside: see
    `compile_format_check`). With `untyped=msgspec.Raw` (message bytes) date-times stay Raw too.

    Required properties have no default, so absent or null fails; optional ones accept null (null
    stands for "not given"). Unknown properties are ignored, as the contract allows.
    """
    required = set(schema.get("required", ()))
    fields: list[Any] = []
    for prop, spec in schema["properties"].items():
        kind = _value_type(prop, spec, untyped)
        if prop in required:
            fields.append((prop, kind))
        elif kind is untyped:
            fields.append((prop, kind, msgspec.Raw(b"") if untyped is msgspec.Raw else None))
        else:
            fields.append((prop, kind | None, None))
    return msgspec.defstruct(name, fields, kw_only=True)


def compile_format_check(schema: dict[str, Any], raw: bool = True) -> FormatCheck:
    """`check(struct, value=None) -> None | reason` for what msgspec has no constraint for: formats,
    and the bounds of untyped properties' JSON text (`raw`: the struct holds `msgspec.Raw`, else
    Python). Given the message bytes `value`, a pass over them proves the text bounds for most
    records, and the per-property checks run only when it cannot."""
    formats: list[tuple[str, Callable[[Any], str | None]]] = []
    texts: list[tuple[str, Callable[[Any], str | None]]] = []
    for prop, spec in schema["properties"].items():
        kinds = [spec["format"]] if "format" in spec else []
        kinds += [alt["format"] for alt in spec.get("anyOf", ())]
        if kinds == ["date-time"]:
            if raw:
                formats.append((prop, _raw_date_time(prop)))
        elif kinds:
            formats.append((prop, _format_check(prop, kinds)))
        if "x-maxDepth" in spec:
            texts.append((prop, _text_check(prop, spec["x-maxDepth"], raw)))
    depth = min((spec["x-maxDepth"] for spec in schema["properties"].values() if "x-maxDepth" in spec), default=0)
    together = _dependent_required(schema)

    openers, unicode = _KEEP_OPENERS, UnicodeDecodeError

    def check(record: msgspec.Struct, value: bytes | None = None) -> str | None:
        problem = _missing_partner(record, together) or _first_problem(record, formats)
        if problem is not None:
            return problem
        # The whole message proves the text bounds at once when it has no more openers than the
        # bound and is UTF-8 (two C passes; inlined, as this runs once per ingested record).
        if value is not None and len(value.translate(None, openers)) <= depth:
            try:
                if value.isascii() or value.decode():
                    return None
            except unicode:
                pass
        return _first_problem(record, texts) or (None if value is None else message_not_utf8(value))

    return check


def _first_problem(record: msgspec.Struct, checks: list[tuple[str, Callable[[Any], str | None]]]) -> str | None:
    for prop, test in checks:
        value = getattr(record, prop)
        if value is not None:
            problem = test(value)
            if problem is not None:
                return problem
    return None


def _dependent_required(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """JSON Schema's `dependentRequired` (a property given needs others given too) as (given, needed)
    pairs: msgspec decodes each field on its own and has no constraint across fields."""
    return [(prop, other) for prop, needs in schema.get("dependentRequired", {}).items() for other in needs]


def _missing_partner(record: msgspec.Struct, pairs: list[tuple[str, str]]) -> str | None:
    for prop, other in pairs:
        if getattr(record, prop) is not None and getattr(record, other) is None:
            return f"{prop} is given without {other}: send both, or neither"
    return None


def _format_check(prop: str, formats: list[str]) -> Callable[[str], str | None]:
    try:
        test = _FORMATS[frozenset(formats)]
    except KeyError:
        raise ValueError(f"format(s) {formats} on {prop!r} are not supported") from None
    reason = f"{prop} is not a valid {' or '.join(formats)}"
    return lambda value: None if test(value) else reason


def _raw_date_time(prop: str) -> Callable[[msgspec.Raw], str | None]:
    parse, invalid = msgspec.json.Decoder(_DATE_TIME).decode, msgspec.ValidationError

    def check(value: msgspec.Raw) -> str | None:
        try:
            parse(value)
        except invalid as exc:
            return f"{exc} - at `$.{prop}`"
        return None

    return check


def _text_check(prop: str, max_depth: int, raw: bool) -> Callable[[Any], str | None]:
    """The JSON text of the value (as sent, or as the emitter will encode it) within the bounds."""
    dumps, encode_error = orjson.dumps, orjson.JSONEncodeError

    def check(value: Any) -> str | None:
        if raw:
            text = bytes(value)
            if not text:
                return None
        else:
            try:
                text = dumps(value)
            except encode_error as exc:
                return f"{prop} cannot be encoded as JSON: {exc}"
        problem = text_problem(text, max_depth)
        return None if problem is None else f"{prop} {problem}"

    return check


def describe(exc: msgspec.ValidationError) -> str:
    """msgspec's message, which names the field (`$.status`) and what was expected."""
    text = str(exc)
    return "record must be a JSON object: " + text if text.startswith("Expected `object`") else text


def call_record_decoder(version: int = 1) -> tuple[Callable[[bytes], msgspec.Struct], FormatCheck]:
    """For message bytes: `decode` (raises msgspec errors) and the format check to run after it."""
    schema = call_record_schema(version)
    return msgspec.json.Decoder(compile_struct(schema)).decode, compile_format_check(schema)


def call_record_validator(version: int = 1) -> Validator:
    """For records already in Python (the emitter, the gateway): `validate(record) -> None | reason`."""
    schema = call_record_schema(version)
    kind = compile_struct(schema, untyped=Any, name="CallRecordObject")
    check = compile_format_check(schema, raw=False)
    convert, error = msgspec.convert, msgspec.ValidationError

    def validate(record: Any) -> str | None:
        try:
            return check(convert(record, kind))
        except error as exc:
            return describe(exc)

    return validate
