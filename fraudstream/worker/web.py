"""Worker web views, as a Blueprint: liveness/readiness, statistics, Prometheus metrics.

The views read the worker's runtime through ``self.app`` (set by the composition root), so
this module imports nothing of the app and there is no import cycle.
"""

from __future__ import annotations

from typing import Any

from faust.exceptions import ConsumerNotStarted
from faust.web import Blueprint, Request, Response, View

from fraudstream.worker.stats import prometheus_text

blueprint = Blueprint("fraudstream")


def _runtime(view: View) -> Any:
    """The :class:`fraudstream.worker.runtime.WorkerRuntime` of the app serving ``view``."""
    return view.app.runtime  # type: ignore[attr-defined]


def assigned_input_partitions(app: Any, topic: str) -> int:
    """How many partitions of ``topic`` the worker's consumer holds; 0 while its thread has not
    started (the web server starts first: asked then, Faust raised and /health answered 500
    with a traceback in the log)."""
    try:
        assignment = app.consumer.assignment()
    except ConsumerNotStarted:
        return 0
    return sum(1 for tp in assignment if tp.topic == topic)


@blueprint.route("/health", name="health")
class Health(View):
    """200 when the worker owns input partitions, has recovered their state and read its rules.

    Faust assigns partitions before it has read the tables' changelogs back; until recovery
    completes, the profiles and pending labels are partial, so the worker is not ready yet.
    """

    async def get(self, request: Request) -> Response:
        topic = _runtime(self).settings.kafka.input_topic
        assigned = assigned_input_partitions(self.app, topic)
        recovered = (
            self.app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
            and not self.app.in_recovery
            and not self.app.rebalancing
        )
        follower = _runtime(self).rules_follower
        rules_loaded = follower is not None and follower.loaded.is_set()
        ready = bool(assigned) and recovered and rules_loaded
        status = "ready" if ready else ("recovering" if assigned else "starting")
        body = {"status": status, "assignedPartitions": assigned, "rulesLoaded": rules_loaded}
        return self.json(body, status=200 if ready else 503)


@blueprint.route("/stats", name="stats")
class Stats(View):
    """The worker's counters and latency percentiles as JSON."""

    async def get(self, request: Request) -> Response:
        runtime = _runtime(self)
        body = runtime.stats.to_dict()
        detector = runtime.detector
        body["model"] = {
            "learned": detector.scorer.learned,
            "warmedUp": detector.scorer.warmed_up,
            "threshold": detector.threshold.value,
            "thresholdReady": detector.threshold.ready,
        }
        # the unit the features read amounts in (core.units); None until the first amounts
        body["amountUnit"] = detector.unit.known
        # the step its timestamps come in, seconds (core.clock; 0: exact); None until decided
        body["timestampStep"] = detector.clock.seconds
        # which scale the stream's users spend on (core.behaviour.ScaleEvidence)
        body["scaleEvidence"] = detector.behaviour.scale.to_dict()
        classifier = detector.classifier
        body["classifier"] = {
            "ready": classifier.ready,
            "frauds": classifier.frauds,
            "legit": classifier.legit,
            "threshold": detector.classifier_threshold.value,  # the line in force
            "lineCertified": detector.classifier_threshold.certified,  # at the target precision
            # the best precision labels show on its top probabilities: what parts are judged by
            "bestLabelledPrecision": round(detector.classifier_threshold.reference, 4),
            "labelRate": round(detector.label_rate.value, 6),
            # whether the labels still let each unsupervised part alert alone
            "trust": {
                name: {
                    "trusted": detector.trusts(trust),
                    "precision": round(trust.precision, 4),
                    "resolvedAlerts": trust.resolved,
                }
                for name, trust in detector.trust.items()
            },
        }
        pending = runtime.state.pending
        counts = pending.counts
        body["pending"] = {
            "size": len(pending),  # transactions waiting for their label
            "heldLabels": pending.held_size(),  # labels waiting for their transaction
            "added": counts.added,
            "labeled": counts.labeled,
            "matured": counts.matured,
            "corrected": counts.corrected,
            "forced": counts.forced,
            "held": counts.held,
            "heldResolved": counts.held_resolved,
            "heldExpired": counts.held_expired,
            "corrupt": counts.corrupt,  # stored values that did not decode, dropped
        }
        body["profiles"] = {"users": runtime.state.users()}  # on this worker's partitions
        if runtime.rules_follower is not None:
            body["rules"] = runtime.rules_follower.to_dict()
        if runtime.sink is not None:
            body["sink"] = runtime.sink.stats()
        return self.json(body)


@blueprint.route("/metrics", name="metrics")
class Metrics(View):
    """The same counters in the Prometheus text format, for scraping."""

    async def get(self, request: Request) -> Response:
        text = prometheus_text(_runtime(self).stats)
        return self.text(text, content_type="text/plain; version=0.0.4")
