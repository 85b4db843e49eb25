"""Counters, gauges and histograms in the Prometheus text format, without a client library.

Each process keeps one `Registry`; `/metrics` renders it. Label values are given per call so a
metric can be split by partition, status or route.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

Labels = tuple[tuple[str, str], ...]
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(labels: dict[str, Any]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _render_labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    body = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                    for k, v in pairs)
    return "{" + body + "}"


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self.values: dict[Labels, float] = {}

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_render_labels(labels)} {value:g}"

    def render(self) -> str:
        head = f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(f"{line}\n" for line in self.samples())

    def value(self, **labels: Any) -> float:
        return self.values.get(_labels(labels), 0.0)


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: Any) -> None:
        key = _labels(labels)
        self.values[key] = self.values.get(key, 0.0) + amount


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, **labels: Any) -> None:
        self.values[_labels(labels)] = value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float] = _LATENCY_BUCKETS) -> None:
        super().__init__(name, help)
        self.buckets = tuple(buckets)
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = {}

    def observe(self, value: float, **labels: Any) -> None:
        key = _labels(labels)
        counts = self.counts.setdefault(key, [0] * (len(self.buckets) + 1))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[key] = self.sums.get(key, 0.0) + value

    def samples(self) -> Iterable[str]:
        for labels, counts in sorted(self.counts.items()):
            running = 0
            for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
                running += n
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                yield f"{self.name}_bucket{_render_labels(labels, (('le', le),))} {running}"
            yield f"{self.name}_sum{_render_labels(labels)} {self.sums[labels]:g}"
            yield f"{self.name}_count{_render_labels(labels)} {running}"


class Registry:
    def __init__(self) -> None:
        self.metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> Any:
        return self.metrics.setdefault(metric.name, metric)

    def counter(self, name: str, help: str) -> Counter:
        return self._add(Counter(name, help))

    def gauge(self, name: str, help: str) -> Gauge:
        return self._add(Gauge(name, help))

    def histogram(self, name: str, help: str, buckets: Sequence[float] = _LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help, buckets))

    def render(self) -> str:
        return "".join(m.render() for m in self.metrics.values())


def handler(registry: Registry) -> Any:
    """An aiohttp handler serving `registry` at /metrics."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=registry.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Prometheus-Format": "0.0.4"})

    return metrics


async def serve(registry: Registry, host: str, port: int) -> web.AppRunner:
    """A tiny /metrics server for processes that are not HTTP services themselves (ingest)."""
    app = web.Application()
    app.router.add_get("/metrics", handler(registry))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
