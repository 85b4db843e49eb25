-- A document's number matches however it was typed: `doc{520.494.096-05}` and `doc{52049409605}`
-- are one search term (CPF, CNPJ `12.345.678/0001-90`, CEP `01310-100`, dates `2026-11-29`, ...).
-- A value made only of digits and the separators `.` `-` `/` and space, starting and ending with a
-- digit, is stored and searched as its digits; a plain decimal (`10.50`: digits, one dot, digits)
-- keeps its dot so an amount never matches another amount; every other value is as typed.
CREATE FUNCTION IF NOT EXISTS trilha_q_value AS (v) ->
    if(match(v, '^[0-9]+([-./ ]+[0-9]+)+$') AND NOT match(v, '^[0-9]+\\.[0-9]+$'),
       replaceRegexpAll(v, '[^0-9]', ''), v);

-- The `key{value}` pairs of a q, as [key, value] arrays.
CREATE FUNCTION IF NOT EXISTS trilha_q_pairs AS (q) ->
    extractAllGroupsVertical(q, '([A-Za-z0-9_.-]+)\\{([^{}]*)\\}');

-- 0001's definition with the value normalised: the search (query/events/sql.py) uses it at once.
CREATE OR REPLACE FUNCTION trilha_q_terms AS (q) ->
    arrayMap(m -> concat('q:', lower(m[1]), '{', trilha_q_value(trimBoth(m[2])), '}'), trilha_q_pairs(q));

-- A materialized view keeps the function body it was created with (ClickHouse inlines SQL UDFs
-- into the stored query), so 0004's view is given its query again to use the new definition.
ALTER TABLE call_terms_mv MODIFY QUERY
SELECT company_id, term, timestamp, query_id
FROM calls
ARRAY JOIN arrayConcat(trilha_q_terms(q), arrayMap((k, v) -> trilha_tag_term(k, v), mapKeys(tags), mapValues(tags)))
    AS term;

-- Calls stored before this migration carry their document values as typed: add the new spelling
-- of those terms only (never a term the call already has, so no duplicate rows). A call written
-- between the view's change and this statement may get a term twice: identical rows, merged by
-- call_terms' ReplacingMergeTree and never shown twice (searches read with LIMIT 1 BY).
-- Through Distributed tables (a real cluster), each shard reads and writes its own local tables.
INSERT INTO call_terms (company_id, term, timestamp, query_id)
SELECT company_id, term, timestamp, query_id
FROM calls
ARRAY JOIN arrayFilter(t -> NOT has(arrayMap(m -> concat('q:', lower(m[1]), '{', trimBoth(m[2]), '}'),
                                             trilha_q_pairs(q)), t),
                       arrayDistinct(trilha_q_terms(q))) AS term
WHERE match(q, '\\{\\s*[0-9]+[-./ ]')
SETTINGS parallel_distributed_insert_select = 2;
