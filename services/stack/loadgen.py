"""`trilha loadgen`: realistic call records at a steady rate, through the same emitter gateways use.

The demo traffic of `trilha up --demo` and the load of the benchmarks. Records come from
`RecordFactory` (valid CPF/CNPJ in `q`, a mix of resources, statuses, durations, tags and result
sizes) stamped with the current time, and go through `Emitter`, so what is measured is what a
gateway does. A live line shows the rate achieved, records sent (acknowledged by Kafka) and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from services.gateway.emitter import Emitter
from services.runtime import clients, logs
from services.runtime.netcheck import require_kafka
from services.runtime.running import stop_on_signals
from services.runtime.settings import ConfigError, Settings
from services.stack.records import RecordFactory

log = logs.get("trilha.loadgen")
_TICK_S = 0.01


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=100.0, help="records per second (default 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run; 0 runs until stopped")
    parser.add_argument("--companies", type=int, default=3, help="companies the records are spread over")
    parser.add_argument("--seed", type=int, help="seed of the record generator (default: random)")
    parser.add_argument("--topic", help="overrides TRILHA_KAFKA_TOPIC")
    parser.add_argument("--quiet", action="store_true", help="no live progress line, only a final summary")


@dataclass
class Progress:
    """Counts for the live line; `made` is what the generator produced and handed to the emitter."""

    started: float
    made: int = 0
    last_time: float = 0.0
    last_made: int = 0

    def line(self, emitter: Emitter, now: float, target: float) -> str:
        interval = max(now - self.last_time, 1e-9)
        rate = (self.made - self.last_made) / interval
        self.last_time, self.last_made = now, self.made
        s = emitter.stats
        errors = s.invalid + s.dropped + s.rejected
        kafka = "" if emitter.healthy else "  kafka unreachable: buffering"
        return (f"{now - self.started:7.1f}s  rate {rate:8.0f}/s (target {target:g})  "
                f"sent {s.delivered:>10,}  waiting {emitter.backlog:>8,}  errors {errors:,}{kafka}")


def command(args: argparse.Namespace, settings: Settings) -> int:
    if args.rate <= 0 or args.duration < 0 or args.companies < 1:
        raise ConfigError("--rate must be > 0, --duration >= 0 (0: until stopped), --companies >= 1")
    logs.configure(settings.log_level, settings.log_format, component="loadgen")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the emitter reports outages itself
    return asyncio.run(run(settings, args))


async def run(settings: Settings, args: argparse.Namespace) -> int:
    topic = args.topic or settings.kafka_topic
    await require_kafka(settings)
    try:
        await clients.ensure_topics(settings, topic)
    except Exception as exc:  # noqa: BLE001 - a cluster may forbid it; the topic may exist anyway
        log.warning("could not make sure the topic exists", topic=topic, error=repr(exc))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    factory = RecordFactory(seed=seed, companies=args.companies)
    stop = stop_on_signals()
    emitter = await Emitter(settings, name="loadgen", topic=topic).start()
    log.info("loadgen started", rate=args.rate, duration=args.duration or "until stopped", topic=topic,
             companies=args.companies, seed=seed)
    progress = Progress(started=time.monotonic())
    out = None if args.quiet else sys.stderr
    try:
        await _generate(emitter, factory, args, progress, stop, out)
    finally:
        await emitter.close()
    if out is not None:
        progress.last_time, progress.last_made = progress.started, 0  # the final line: the whole run's rate
        print(progress.line(emitter, time.monotonic(), args.rate), file=out, flush=True)
    elapsed = time.monotonic() - progress.started
    s = emitter.stats
    log.info("loadgen finished", seconds=round(elapsed, 1), made=progress.made, sent=s.delivered,
             rate=round(progress.made / max(elapsed, 1e-9), 1), invalid=s.invalid, dropped=s.dropped,
             rejected=s.rejected, kept_for_next_start=emitter.spill.pending_records if emitter.spill else 0)
    return _exit_code(emitter, progress.made, settings)


def _exit_code(emitter: Emitter, made: int, settings: Settings) -> int:
    """Non-zero when records did not reach Kafka: a loader that delivered nothing must not look fine."""
    undelivered = made - emitter.stats.delivered - emitter.stats.invalid - emitter.stats.rejected
    if undelivered <= 0:
        return 0
    print(f"trilha loadgen: {undelivered:,} of {made:,} records did not reach Kafka at "
          f"{settings.kafka_bootstrap_servers} (kept in {emitter.spill_dir} for the next start)",
          file=sys.stderr, flush=True)
    return 1


async def _generate(emitter: Emitter, factory: RecordFactory, args: argparse.Namespace, progress: Progress,
                    stop: asyncio.Event, out: TextIO | None) -> None:
    """Emit on a schedule (records due = rate × elapsed), so short stalls are caught up, not lost."""
    rate, duration = args.rate, args.duration
    catch_up = max(1, int(rate * 0.1))  # at most 100 ms of records per tick, so the emitter keeps pace
    tty = out is not None and out.isatty()
    next_line = progress.started + (1.0 if tty else 5.0)
    progress.last_time = progress.started
    while not stop.is_set():
        now = time.monotonic()
        elapsed = now - progress.started
        if duration and elapsed >= duration:
            break
        due = int(elapsed * rate) - progress.made
        for _ in range(min(due, catch_up)):
            emitter.emit_nowait(factory.record())
            progress.made += 1
        if out is not None and now >= next_line:
            text = progress.line(emitter, now, rate)
            out.write(f"\r{text}\x1b[K" if tty else f"{text}\n")
            out.flush()
            next_line = now + (1.0 if tty else 5.0)
        await asyncio.sleep(_TICK_S)
    if tty:
        out.write("\n")  # keep the last live line on screen
