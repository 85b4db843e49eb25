"""Every rule of the Events API request: a bad request is a 400 that names the parameter and says
what to fix, in the platform's answer shape; never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from query.errors import BadRequest
from query.events import dotnet_dates
from query.events import params as events_params
from tests.query.support import QueryService, bearer, create_token, query_service, unique_company
from tests.stack import Stack


@pytest.fixture(scope="module")
async def service(stack: Stack) -> AsyncIterator[QueryService]:
    async with query_service(stack, "query-params") as running:
        yield running


@pytest.fixture(scope="module")
def headers(stack: Stack) -> dict[str, str]:
    return bearer(create_token(stack, unique_company()))


CURSOR = "eyJ2IjoxfQ.c2ln"

BAD_BODIES = [
    ({}, "QueryId", "at least one"),
    ({"DateFormat": "yyyy-MM-dd"}, "QueryId", "at least one"),
    ({"queryId": "x"}, "queryId", "did you mean 'QueryId'"),
    ({"QueryId": "x", "Limit": 5}, "Limit", "unknown parameter"),
    ({"QueryId": 12345}, "QueryId", "must be a string, not a number"),
    ({"QueryId": ""}, "QueryId", "empty"),
    ({"QueryId": "x" * 129}, "QueryId", "maximum is 128"),
    ({"QueryId": "x", "q": "doc{1}"}, "QueryId", "not combined"),
    ({"QueryId": "x", "Tags": {"a": "b"}}, "QueryId", "not combined"),
    ({"QueryId": "x", "PageSize": 10}, "PageSize", "only used with q or Tags"),
    ({"QueryId": "x", "Cursor": CURSOR}, "Cursor", "only used with q or Tags"),
    ({"QueryId": "x", "DateFormat": "yyyy-MM-dd"}, "DateFormat", "only used with QueryDate"),
    ({"QueryId": "x", "QueryDate": "2019-07-25", "DateFormat": ""}, "DateFormat", "empty"),
    ({"QueryId": "x", "QueryDate": "25/07/2019"}, "QueryDate", "does not match DateFormat 'yyyy-MM-dd'"),
    ({"QueryId": "x", "QueryDate": "2019-02-30"}, "QueryDate", "not a real date"),
    ({"QueryId": "x", "QueryDate": "2019-07-25", "DateFormat": "MMMM dd yyyy"}, "DateFormat", "not support"),
    ({"QueryId": "x", "QueryDate": "10:00", "DateFormat": "HH:mm"}, "DateFormat", "a date needs"),
    ({"QueryId": "x", "QueryDate": 20190725}, "QueryDate", "must be a string"),
    ({"q": "12345678900"}, "q", "key{value}"),
    ({"q": "doc{1}}"}, "q", "key{value}"),
    ({"q": ["doc{1}"]}, "q", "must be a string, not an array"),
    ({"q": "doc{1}", "PageSize": 0}, "PageSize", "from 1 to 1000"),
    ({"q": "doc{1}", "PageSize": 1001}, "PageSize", "from 1 to 1000"),
    ({"q": "doc{1}", "PageSize": "ten"}, "PageSize", "must be an integer"),
    ({"q": "doc{1}", "PageSize": 10.5}, "PageSize", "must be an integer"),
    ({"q": "doc{1}", "PageSize": True}, "PageSize", "must be an integer"),
    ({"q": "doc{1}", "Cursor": 5}, "Cursor", "must be a string"),
    ({"q": "doc{1}", "Cursor": "not-a-cursor"}, "Cursor", "altered or not issued"),
    ({"Tags": "env=prod"}, "Tags", "must be an object"),
    ({"Tags": {}}, "Tags", "empty object"),
    ({"Tags": {"env": 1}}, "Tags", "must be a string, not a number"),
    ({"Tags": {"": "x"}}, "Tags", "keys must be 1 to 128"),
    ({"Tags": {f"k{n}": "v" for n in range(33)}}, "Tags", "maximum is 32"),
]


@pytest.mark.parametrize("body, parameter, says", BAD_BODIES)
async def test_bad_parameters_are_400_naming_the_parameter(service: QueryService, headers: dict[str, str],
                                                           body: dict, parameter: str, says: str) -> None:
    answer = await service.post("/events", body, headers=headers)
    assert answer.status == 400, answer.body
    status = answer.body["Status"]
    assert status["code"] == 400 and status["parameter"] == parameter
    assert says in status["message"], status["message"]
    assert answer.body["Result"] == [] and answer.body["Cursor"] is None


@pytest.mark.parametrize("raw, says", [
    (b"", "empty"),
    (b"{\"QueryId\": ", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, not an array"),
    (b"\"QueryId\"", "must be a JSON object, not a string"),
    (b"\xff\xfe{}", "not valid JSON"),
])
async def test_bodies_that_are_not_a_json_object_are_400(service: QueryService, headers: dict[str, str],
                                                         raw: bytes, says: str) -> None:
    answer = await service.post("/log", None, headers=headers, raw=raw)
    assert answer.status == 400 and answer.body["Status"]["parameter"] == "body"
    assert says in answer.body["Status"]["message"]


async def test_a_body_over_the_limit_is_refused_with_a_json_message(service: QueryService,
                                                                    headers: dict[str, str]) -> None:
    answer = await service.post("/events", {"q": "doc{" + "1" * (2 * 1024 * 1024) + "}"}, headers=headers)
    assert answer.status == 413
    assert "larger than the limit of 1048576 bytes" in answer.body["Status"]["message"]
    assert answer.body["Status"]["parameter"] == "body"


async def test_wrong_method_and_path_are_json_too(service: QueryService, headers: dict[str, str]) -> None:
    wrong_method = await service.get("/events", headers=headers)
    assert wrong_method.status == 405 and "use POST" in wrong_method.body["error"]["message"]
    missing = await service.get("/no-such-thing", headers=headers)
    assert missing.status == 404 and "no such path" in missing.body["error"]["message"]


async def test_null_means_absent(service: QueryService, headers: dict[str, str]) -> None:
    answer = await service.post("/events", {"QueryId": "nope", "Cursor": None, "PageSize": None},
                                headers=headers)
    assert answer.status == 404


@pytest.mark.parametrize("value, pattern, expected", [
    ("2019-07-25", "yyyy-MM-dd", datetime(2019, 7, 25, tzinfo=UTC)),
    ("25/07/2019", "dd/MM/yyyy", datetime(2019, 7, 25, tzinfo=UTC)),
    ("07/25/2019", "MM/dd/yyyy", datetime(2019, 7, 25, tzinfo=UTC)),
    ("2019-07-25T13:04:05", "yyyy-MM-ddTHH:mm:ss", datetime(2019, 7, 25, 13, 4, 5, tzinfo=UTC)),
    ("2019-07-25 13:04:05.250", "yyyy-MM-dd HH:mm:ss.fff", datetime(2019, 7, 25, 13, 4, 5, 250000, tzinfo=UTC)),
    ("5/7/19", "d/M/yy", datetime(2019, 7, 5, tzinfo=UTC)),
    ("20190725", "yyyyMMdd", datetime(2019, 7, 25, tzinfo=UTC)),
    ("25 de 07 de 2019", "dd 'de' MM 'de' yyyy", datetime(2019, 7, 25, tzinfo=UTC)),
    ("2019-07-25T13:00:00Z", "yyyy-MM-ddTHH:mm:ssK", datetime(2019, 7, 25, 13, tzinfo=UTC)),
])
def test_dotnet_date_patterns(value: str, pattern: str, expected: datetime) -> None:
    assert dotnet_dates.parse(value, pattern) == expected


def test_dotnet_offsets_are_kept() -> None:
    parsed = dotnet_dates.parse("2019-07-25T22:00:00-03:00", "yyyy-MM-ddTHH:mm:sszzz")
    assert parsed.astimezone(UTC) == datetime(2019, 7, 26, 1, tzinfo=UTC)


@pytest.mark.parametrize("pattern", ["yyyy-MM-dd hh:mm tt", "dddd, dd MMMM yyyy", "yyyy-MM-dd g", "'yyyy"])
def test_culture_dependent_or_broken_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(BadRequest) as caught:
        dotnet_dates.compile_pattern(pattern)
    assert caught.value.parameter == "DateFormat"


async def test_the_openapi_document_is_served_and_names_every_parameter(service: QueryService) -> None:
    answer = await service.get("/openapi.yaml")
    assert answer.status == 200
    for name in ("/events:", "/log:", *(f"        {p}:" for p in events_params.ALLOWED)):
        assert name in answer.body, name
