"""Worker web views: liveness/readiness and the worker's own statistics."""

from __future__ import annotations

from faust.web import Request, Response, View

from fraudstream.app import app, detector, profiles, settings, sink, stats
from fraudstream.metrics import prometheus_text


@app.page("/health")
class Health(View):
    """200 when the worker is up and owns partitions of the input topic, else 503."""

    async def get(self, request: Request) -> Response:
        assigned = [tp for tp in app.consumer.assignment() if tp.topic == settings.input_topic]
        ready = bool(assigned)
        body = {"status": "ready" if ready else "starting", "assignedPartitions": len(assigned)}
        return self.json(body, status=200 if ready else 503)


@app.page("/stats")
class Stats(View):
    """The worker's counters and latency percentiles as JSON."""

    async def get(self, request: Request) -> Response:
        body = stats.to_dict()
        body["model"] = {
            "learned": detector.scorer.learned,
            "warmedUp": detector.scorer.warmed_up,
            "threshold": detector.threshold.value,
            "thresholdReady": detector.threshold.ready,
        }
        body["profiles"] = {"users": len(profiles)}  # on this worker's partitions
        if sink is not None:
            body["sink"] = sink.stats()
        return self.json(body)


@app.page("/metrics")
class Metrics(View):
    """The same counters in the Prometheus text format, for scraping."""

    async def get(self, request: Request) -> Response:
        return self.text(prometheus_text(stats), content_type="text/plain; version=0.0.4")
