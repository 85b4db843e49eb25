"""A row whose text is not valid UTF-8, written past the decoder straight to the real ClickHouse:
`calls` computes `client_folded` with normalizeUTF8NFD, which refuses such bytes. The insert must
then fail with a data error (so the writer bisects and dead-letters that row, and stores the rest),
never answer success and leave the row out, nor be retried forever as if the server were down (the
real server answers code 621 CANNOT_NORMALIZE_STRING, which the writer used to retry endlessly,
stopping the partition).
(The ingest decoder refuses invalid UTF-8 anyway; this guards the layer under it.)"""

from __future__ import annotations

import asyncio

import orjson

from ingest.batcher import Batch
from ingest.metrics import IngestMetrics
from ingest.writer import Writer
from services.runtime import logs
from tests.ingest.messages import message
from tests.ingest.support import record_values
from tests.query.support import unique_company


async def test_an_invalid_utf8_row_is_stored_or_handed_back_never_dropped(ch) -> None:  # noqa: ANN001
    company = unique_company("utf8")
    good = record_values(2, company, seed=7)
    bad = orjson.loads(record_values(1, company, seed=8)[0])
    bad["client_name"] = "CLIENT_NAME_PLACEHOLDER"
    bodies = [good[0], orjson.dumps(bad).replace(b"CLIENT_NAME_PLACEHOLDER", b"Jo\xff\xfeo"), good[1]]
    batch = Batch(seq=1, started=0.0, bodies=bodies, origins=[message(b, n) for n, b in enumerate(bodies)])
    writer = Writer(ch, "t", IngestMetrics.create(), logs.get("test"), insert_timeout_s=60, max_rows=100)
    refused = await asyncio.wait_for(writer.write(batch), 120)  # a retried-forever data error hangs here
    stored = (await ch.query("SELECT query_id FROM calls WHERE company_id = {c:String}",
                             parameters={"c": company})).result_rows
    ids = {row[0] for row in stored}
    bad_id = bad["query_id"]
    good_ids = {orjson.loads(b)["query_id"] for b in good}
    assert good_ids <= ids, "the valid rows around it are stored"
    assert (bad_id in ids) != (len(refused) == 1), f"stored={bad_id in ids} refused={[r.rejection for r in refused]}"
