-- Shared SQL functions: one definition used both when rows are written and when they are searched,
-- so a search term is normalised exactly as stored terms are.

-- Folding for case- and accent-insensitive matching ("João" ~ "joao").
CREATE FUNCTION IF NOT EXISTS trilha_fold AS (s) ->
    lowerUTF8(replaceRegexpAll(normalizeUTF8NFD(s), '\\p{Mn}', ''));

-- The input parameters of a query, `key{value}` comma-separated, as search terms: 'q:key{value}'
-- with the key lower-cased and the value trimmed.
CREATE FUNCTION IF NOT EXISTS trilha_q_terms AS (q) ->
    arrayMap(m -> concat('q:', lower(m[1]), '{', trimBoth(m[2]), '}'),
             extractAllGroupsVertical(q, '([A-Za-z0-9_.-]+)\\{([^{}]*)\\}'));

-- A custom tag as a search term: 't:key<US>value'.
CREATE FUNCTION IF NOT EXISTS trilha_tag_term AS (k, v) -> concat('t:', k, '\x1f', v);
