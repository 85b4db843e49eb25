"""Reading request input into Python values, or a `BadRequest` that names the parameter.

Every endpoint reads its JSON body and query string through these helpers, so a wrong type, an
out-of-range number or an unknown parameter always gets the same kind of message: which parameter,
what was wrong, what to send instead. A handler never sees a value it did not ask for.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import orjson
from aiohttp import web

from query.errors import BadRequest, shown

MAX_NAME = 64  # a parameter name longer than this is not one of ours, and is never echoed whole
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", list: "an array",
               float: "a number"}


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object. Size is capped by the app's client_max_size (413 beyond it)."""
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("the request body is empty: send a JSON object", "body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc}): send a JSON object", "body") from None
    if not isinstance(value, dict):
        raise BadRequest(f"the request body must be a JSON object, not {_json_kind(value)}", "body")
    return value


def reject_unknown(params: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Unknown parameters are refused (a typo must not silently widen a search)."""
    for name in params:
        if name in allowed:
            continue
        near = next((a for a in allowed if a.lower() == name.lower()), None) if len(name) <= MAX_NAME else None
        hint = f"did you mean {near!r}? Names are case-sensitive" if near else f"known: {', '.join(allowed)}"
        raise BadRequest(f"unknown parameter {shown(name)}: {hint}", name[:MAX_NAME])


def optional(params: Mapping[str, Any], name: str, kind: type) -> Any:
    """The value of `name` if present and not null, checked to be of `kind` (bool is not an int)."""
    value = params.get(name)
    if value is None:
        return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise BadRequest(f"{name} must be {_TYPE_NAMES.get(kind, kind.__name__)}, not {_json_kind(value)}", name)
    return value


def text(params: Mapping[str, Any], name: str, max_length: int, required: bool = False) -> str | None:
    """A non-blank string of at most `max_length` characters, surrounding spaces removed."""
    value = optional(params, name, str)
    if value is None or not value.strip():
        if required:
            raise BadRequest(f"{name} is required", name)
        if value is not None:
            raise BadRequest(f"{name} is empty: send a value or leave {name} out", name)
        return None
    if len(value) > max_length:  # counted as sent (surrounding spaces included), as the document's maxLength
        raise BadRequest(f"{name} is {len(value)} characters long; the maximum is {max_length}", name)
    return value.strip()


def integer(params: Mapping[str, Any], name: str, low: int, high: int, default: int | None = None) -> int | None:
    """An integer within [low, high]; query-string values ("50") are accepted as integers."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise BadRequest(f"{name} must be an integer from {low} to {high}, not {shown(params[name])}",
                             name) from None
    value = optional({name: value}, name, int)
    if value is None:
        return default
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low} to {high}; got {value}", name)
    return value


def string_map(params: Mapping[str, Any], name: str, max_items: int, max_key: int, max_value: int) -> dict[str, str]:
    """An object of string → string (e.g. Tags), non-empty, with bounded sizes."""
    value = optional(params, name, dict)
    if value is None:
        return {}
    if not value:
        raise BadRequest(f"{name} is an empty object: give at least one key and value, or leave it out", name)
    if len(value) > max_items:
        raise BadRequest(f"{name} has {len(value)} entries; the maximum is {max_items}", name)
    for key, item in value.items():
        if not 1 <= len(key) <= max_key:
            raise BadRequest(f"{name} keys must be 1 to {max_key} characters long; {shown(key, 40)} is not", name)
        if not isinstance(item, str):
            raise BadRequest(f"{name}[{shown(key, 40)}] must be a string, not {_json_kind(item)}", name)
        if len(item) > max_value:
            raise BadRequest(f"{name}[{shown(key, 40)}] is longer than {max_value} characters", name)
    return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
