"""Running a long-lived process until it is signalled: SIGTERM/SIGINT set a stop event, and the
process's metrics are served on /metrics meanwhile.

Every process (ingest, the gateway, the scheduler, the load generator) stops the same way, so a
supervisor or an orchestrator can stop any of them with the same signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

from services.runtime import metrics
from services.runtime.settings import Settings


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets (the running loop's handlers replace the default exit)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def until_signalled(settings: Settings, registry: metrics.Registry | None, log: Any,
                          host: str | None = None) -> AsyncIterator[asyncio.Event]:
    """Yield the stop event while `registry` is served at `host` (default TRILHA_METRICS_HOST) and
    TRILHA_METRICS_PORT; no port (0) serves nothing. A port already taken (say a second process on
    one machine) is a warning, not a reason to stop the process."""
    stop = stop_on_signals()
    runner = None
    if registry is not None and settings.metrics_port:
        try:
            runner = await metrics.serve(registry, host or settings.metrics_host, settings.metrics_port)
        except OSError as exc:
            log.warning("metrics port unavailable; serving no /metrics", port=settings.metrics_port,
                        error=str(exc))
    try:
        yield stop
    finally:
        if runner is not None:
            await runner.cleanup()
