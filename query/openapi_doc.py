"""The OpenAPI document as served at `GET /openapi.yaml`: `schemas/openapi.yaml` made whole.

The document describes records by the call-record contract, which lives once, in
`schemas/call_record.v1.json`, and is referred to from the YAML as `call_record.v1.json#/...`.
A client that fetches only `/openapi.yaml` cannot follow such a file reference, so the served
copy carries the contract itself as `components.schemas.CallRecord` (loaded from the file, its
`$id`/`$schema` left out) and points its references there. The file stays what people edit;
the contract is also served unchanged at `GET /call_record.v1.json`.
"""

from __future__ import annotations

from functools import cache

import orjson

import schemas

CONTRACT_FILE = "call_record.v1.json"
_COMPONENT = "#/components/schemas/CallRecord"


@cache
def served() -> str:
    """The YAML with the contract inlined (JSON is YAML, so it goes in as one flow line)."""
    text = schemas.read_text("openapi.yaml")
    if not text.rstrip().splitlines()[-1].startswith("    "):
        raise RuntimeError("schemas/openapi.yaml must end inside components.schemas")  # see test_openapi
    contract = {k: v for k, v in schemas.call_record_schema().items() if k not in ("$id", "$schema")}
    text = text.replace(f'"{CONTRACT_FILE}#', f'"{_COMPONENT}').replace(f'"{CONTRACT_FILE}"', f'"{_COMPONENT}"')
    return text.rstrip() + "\n    CallRecord: " + orjson.dumps(contract).decode() + "\n"
