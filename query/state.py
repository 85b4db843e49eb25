"""What the query application shares between requests, as typed `web.AppKey`s: its settings, the
ClickHouse client, the metrics registry, the per-company fair-use slots and the health-check session.

Typed keys let a handler read `request.app[CH]` with its type known, and spare aiohttp's
`NotAppKeyWarning` without silencing it for the whole process.
"""

from __future__ import annotations

from aiohttp import ClientSession, web
from clickhouse_connect.driver.asyncclient import AsyncClient

from query.access.fair_use import CompanySlots
from services.runtime.metrics import Registry
from services.runtime.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CH = web.AppKey("ch", AsyncClient)  # one client, no session: safe to share between concurrent requests
METRICS = web.AppKey("metrics", Registry)
SEARCH_SLOTS = web.AppKey("search_slots", CompanySlots)  # searches and report queries
EXPORT_SLOTS = web.AppKey("export_slots", CompanySlots)  # CSV exports
PING = web.AppKey("ping", ClientSession)  # /readyz's own connections to ClickHouse
