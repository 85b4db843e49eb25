"""What the emitter counts and how it reports it: the stats, the log throttle and the metrics view.

Kept apart from the delivery code so a new counter is one line here, whatever the emitter does
with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from services.gateway.emitter.buffer import MemoryBuffer


@dataclass
class EmitterStats:
    """What happened to the records handed to `emit` (all counts since start)."""

    accepted: int = 0  # queued for delivery
    delivered: int = 0  # acknowledged by Kafka (a record re-sent after a failure counts again)
    invalid: int = 0  # failed the contract (or could not be encoded): logged, never sent
    dropped: int = 0  # memory and disk budgets both exhausted, or emitted after close
    rejected: int = 0  # refused by the broker for good (e.g. too large)
    spilled: int = 0  # written to the spill file
    failures: int = 0  # delivery attempts that failed (the window is retried)


class Throttle:
    """Log a recurring problem at most once per `every` seconds, with how often it happened."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.last, self.count = every, -1e9, 0

    def due(self) -> int:
        """Count one occurrence; how many happened since the last log line if one is due now, else 0."""
        self.count += 1
        now = time.monotonic()
        if now - self.last < self.every:
            return 0
        count, self.count, self.last = self.count, 0, now
        return count


class _Observed(Protocol):
    """What `StatsMetric` reads from an emitter."""

    name: str
    stats: EmitterStats
    memory: MemoryBuffer

    @property
    def backlog(self) -> int: ...


class StatsMetric:
    """Duck-types a `services.runtime.metrics` metric: the registry calls `render()`."""

    def __init__(self, emitter: _Observed) -> None:
        self.emitter = emitter

    def render(self) -> str:
        """The emitter's live counts in Prometheus text format."""
        e = self.emitter
        lines = ["# HELP trilha_emitter_records_total Call records by what happened to them",
                 "# TYPE trilha_emitter_records_total counter"]
        lines += [f'trilha_emitter_records_total{{emitter="{e.name}",outcome="{k}"}} {v}'
                  for k, v in e.stats.__dict__.items()]
        lines += ["# HELP trilha_emitter_backlog Records waiting for Kafka (memory, disk, in flight)",
                  "# TYPE trilha_emitter_backlog gauge",
                  f'trilha_emitter_backlog{{emitter="{e.name}"}} {e.backlog}',
                  "# HELP trilha_emitter_memory_bytes Bytes of records held in memory",
                  "# TYPE trilha_emitter_memory_bytes gauge",
                  f'trilha_emitter_memory_bytes{{emitter="{e.name}"}} {e.memory.bytes}']
        return "\n".join(lines) + "\n"
