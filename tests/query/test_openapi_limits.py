"""The caps the document states are the caps the service enforces: a cheap, deterministic guard
beside the schemathesis run (which samples; this checks every capped parameter every time)."""

from __future__ import annotations

import yaml

from query.calls.cursor import _MAX_LENGTH as CURSOR_MAX  # noqa: PLC2701
from query.events import params as events_params
from query.openapi_doc import served
from query.reports import filters, http, page, runs


def _doc() -> dict:
    return yaml.safe_load(served())


def test_every_report_filter_cap_is_the_documented_max_length() -> None:
    params = {p["name"]: p["schema"] for p in _doc()["components"]["parameters"].values()}
    for name, cap in filters.MAX_NAMED_TEXT.items():
        assert params[name]["maxLength"] == cap, name


def test_events_body_caps_match_the_service() -> None:
    props = _doc()["components"]["schemas"]["EventsRequest"]["properties"]
    assert props["QueryDate"]["maxLength"] == props["DateFormat"]["maxLength"] == events_params.MAX_DATE_TEXT
    assert props["Cursor"]["maxLength"] == CURSOR_MAX
    assert props["PageSize"]["maximum"] == events_params.MAX_PAGE_SIZE
    assert props["Tags"]["maxProperties"] <= events_params.MAX_TERMS


def test_report_paging_and_run_limits_match_the_service() -> None:
    paths = _doc()["paths"]
    report = {p.get("name"): p.get("schema", {}) for p in paths["/reports/api-logs"]["get"]["parameters"]}
    assert report["cursor"]["maxLength"] == http.MAX_CURSOR
    assert report["page_size"]["maximum"] == page.MAX_PAGE_SIZE
    listed = {p.get("name"): p.get("schema", {}) for p in paths["/reports/schedules/{id}/runs"]["get"]["parameters"]}
    assert listed["limit"]["maximum"] == runs.MAX_RUNS
