"""Human-readable one-line renderings of alerts and dead letters (for tail and demo)."""

from __future__ import annotations

from typing import Any


def describe_reason(reason: dict[str, Any]) -> str:
    """``amount_threshold(>10000)``, ``half_space_trees(0.93>=0.8)``, or for the classifier,
    whose reason carries a probability, ``fraud_classifier(0.97>=0.62)``.

    >>> describe_reason({"type": "model", "name": "fraud_classifier", "probability": 0.97,
    ...                  "threshold": 0.62})
    'fraud_classifier(0.97>=0.62)'
    """
    name = str(reason.get("name", "?"))
    if reason.get("type") == "rule" and "threshold" in reason:
        return f"{name}(>{reason['threshold']:g})"
    if reason.get("type") == "model":
        value = reason.get("probability", reason.get("score", 0))
        return f"{name}({value:.2f}>={reason.get('threshold', 0):g})"
    return name


def format_alert(alert: dict[str, Any]) -> str:
    """One line per alert: when, who, how much, the trees' score and the risk score, why."""
    reasons = ", ".join(describe_reason(r) for r in alert.get("reasons", []))
    amount = alert.get("amount")
    amount_text = f"{amount:>12,.2f}" if isinstance(amount, int | float) else f"{amount!s:>12}"
    return (
        f"ALERT {alert.get('timestamp', '?')}  user={alert.get('userId', '?'):<10} "
        f"amount={amount_text}  score={alert.get('score', 0):.2f}  "
        f"risk={alert.get('risk', 0):.2f}  "
        f"reasons=[{reasons}]  tx={alert.get('transactionId', '?')}"
    )


def format_dead_letter(record: dict[str, Any]) -> str:
    """One line per dead letter: where it came from and why it was refused."""
    source = record.get("source", {})
    where = f"{source.get('topic')}[{source.get('partition')}]@{source.get('offset')}"
    payload = record.get("payload", record.get("payloadBase64", ""))
    preview = payload[:60] + ("..." if len(payload) > 60 else "")
    return f"DLQ   {where}  {record.get('reason')}: {record.get('error')}  payload={preview!r}"
