"""The SQL of the Events API: text with `{name:Type}` placeholders; values always go as parameters.

Read paths, all within one company (the caller's) and all reading by sorting key:
- QueryId: `calls` by its full key, the timestamp taken from `call_ids` (company_id, query_id →
  timestamp) in the same query (`by_query_id`: one round trip instead of two; at 5M records the
  Events API's QueryId p50 went from 28.0 to 21.1-22.7 ms, server CPU from 26.6 to ~22 ms a
  request: README "Storage figures"). With a QueryDate, `calls` is read first within a few days
  of it (no `call_ids` read), falling back to `by_query_id` when the date was wrong.
- q / Tags: search terms are normalised by the same SQL functions ingest's materialized view uses
  (`trilha_q_terms`, `trilha_tag_term`). The *driver* term (the rarest) is read from `call_terms`
  newest first from the cursor's keyset position, in sorting-key order and within a time window
  below it, so a page costs the same at page 1 and page 1,000 (no OFFSET) and as history grows;
  candidates are then fetched from `calls` by key, and with several terms only rows carrying all
  of them are kept.
Every statement is tenant-checked (`query.access.tenant`): each table is followed by
`WHERE company_id = {company:String}`. The keyset, the record columns and the rule that drops
duplicates not merged yet are the ones every reader of `calls` shares (`query.calls`).
"""

from __future__ import annotations

from query.access.tenant import CONDITION
from query.calls import keyset, records

_TS = keyset.TS
ROW_TERMS = ("arrayConcat(trilha_q_terms(q), "
             "arrayMap((k, v) -> trilha_tag_term(k, v), mapKeys(tags), mapValues(tags)))")


def _select(where: str) -> str:
    return f"SELECT {records.columns()} FROM calls WHERE {CONDITION} AND {where} {keyset.ORDER}"


def by_query_id() -> str:
    """The record with a QueryId in one round trip: `call_ids` gives its timestamp(s) as a set, and
    `calls` is read by its sorting key (company, timestamp in the set, query_id). On a cluster the
    set is built once (GLOBAL IN) and both reads are routed to the QueryId's shard."""
    return _select("timestamp IN (SELECT timestamp FROM call_ids WHERE " + CONDITION
                   + " AND query_id = {query_id:String}) AND query_id = {query_id:String}")


def query_id_timestamps() -> str:
    """When a QueryId's call happened, from the QueryId → timestamp table (one row, but a gateway
    that re-sent a call with another timestamp may have left two)."""
    return ("SELECT DISTINCT toUnixTimestamp64Milli(timestamp) FROM call_ids "
            "WHERE " + CONDITION + " AND query_id = {query_id:String} LIMIT 16")


def by_query_id_between() -> str:
    """The record with a QueryId within [lo, hi): by the main table's sorting key when the range is
    the exact timestamp from `query_id_timestamps`, or a few days around a caller's QueryDate."""
    return _select(f"timestamp >= {_TS % 'lo'} AND timestamp < {_TS % 'hi'} AND query_id = {{query_id:String}}")


def search_terms() -> str:
    """The normalised terms of a q and of tags, computed by the same functions ingest uses."""
    return ("SELECT arrayDistinct(arrayConcat(trilha_q_terms({q:String}), "
            "arrayMap((k, v) -> trilha_tag_term(k, v), {tag_keys:Array(String)}, {tag_values:Array(String)})))")


def _term_bounds(after: bool, lo: bool, hi: bool) -> str:
    """Keyset position (strictly below `after`), and a time window [lo, hi) when given.

    A lower bound is what keeps a newest-first read from touching every monthly partition: without
    it, ClickHouse opens each part holding the term, so a page would cost more as history grows.
    """
    clauses = []
    if after:
        clauses.append(keyset.after())
    if lo:
        clauses.append(f"timestamp >= {_TS % 'lo'}")
    if hi:
        clauses.append(f"timestamp < {_TS % 'hi'}")
    return "".join(f" AND {c}" for c in clauses)


def term_counts(terms: int, lo: bool, hi: bool) -> str:
    """Rows of each term in the window, counted up to {cap}: enough to pick the rarest term."""
    parts = [f"SELECT {n} AS term_index, count() AS rows FROM (SELECT 1 FROM call_terms "
             f"WHERE {CONDITION} AND term = {{term{n}:String}}{_term_bounds(False, lo, hi)} "
             "LIMIT {cap:UInt32})" for n in range(terms)]
    return " UNION ALL ".join(parts)


def _driver_keys(after: bool, lo: bool, hi: bool, columns: str = "timestamp, query_id") -> str:
    """Distinct keys of the term index (the walk counts them, so an unmerged copy must not count)."""
    return (f"SELECT {columns} FROM call_terms WHERE {CONDITION} "
            f"AND term = {{driver:String}}{_term_bounds(after, lo, hi)} "
            f"{keyset.ORDER} LIMIT 1 BY timestamp, query_id LIMIT {{candidates:UInt32}}")


def driver_keys(after: bool, lo: bool, hi: bool) -> str:
    """The next {candidates} positions of the driver term, newest first."""
    return _driver_keys(after, lo, hi, "toUnixTimestamp64Milli(timestamp), query_id")


def page_single_term(after: bool, lo: bool, hi: bool) -> str:
    """One term: the rows of its next {candidates} positions, in one round trip."""
    return _select(f"(timestamp, query_id) IN ({_driver_keys(after, lo, hi)})") + " LIMIT {limit:UInt32}"


def rows_with_all_terms() -> str:
    """Of the candidate keys, the rows that carry every term, newest first."""
    keys = ("SELECT tupleElement(key, 1), tupleElement(key, 2) FROM (SELECT arrayJoin(arrayZip("
            "arrayMap(t -> fromUnixTimestamp64Milli(t, 'UTC'), {key_ts:Array(Int64)}), {key_ids:Array(String)})) "
            "AS key)")
    return _select(f"(timestamp, query_id) IN ({keys}) AND hasAll({ROW_TERMS}, {{terms:Array(String)}})"
                   ) + " LIMIT {limit:UInt32}"
