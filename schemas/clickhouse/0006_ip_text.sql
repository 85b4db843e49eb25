-- A caller's address as people write it: IPv4 callers are stored in the IPv6 column as
-- ::ffff:a.b.c.d and read back as a.b.c.d; a record without an address ('::') reads as ''.
-- Every reader (Events API, report pages, CSV, print view) uses this one definition.
CREATE FUNCTION IF NOT EXISTS trilha_ip_text AS (ip) ->
    if(ip = toIPv6('::'), '', replaceRegexpOne(IPv6NumToString(ip), '^::ffff:(\\d+\\.\\d+\\.\\d+\\.\\d+)$', '\\1'));
