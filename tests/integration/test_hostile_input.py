"""10,000 hostile messages mixed with good ones: bad ones dead-lettered, good ones processed."""

from __future__ import annotations

import random

import orjson
import pytest

from tests.conftest import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

HOSTILE = 10_000
GOOD = 2_000


def hostile(rng: random.Random, i: int) -> bytes:
    """One message the parser must refuse, of a randomly chosen kind."""
    kind = i % 12
    if kind == 0:
        return bytes(rng.randrange(128, 256) for _ in range(rng.randrange(1, 64)))  # bad UTF-8
    if kind == 1:
        return b"[" * 5000 + b"]" * 5000  # deep nesting
    if kind == 2:
        return b'{"userId": "u", "amount": 1' + b"9" * 400 + b', "timestamp": 0}'  # huge number
    if kind == 3:
        return b'{"userId": "u", "amount": NaN, "timestamp": 0}'
    if kind == 4:
        return b'{"userId": "u", "amount": Infinity, "timestamp": 0}'
    if kind == 5:
        return orjson.dumps({"userId": ["u"], "amount": 5, "timestamp": 0})  # wrong type
    if kind == 6:
        return orjson.dumps({"userId": "u", "amount": "5 EUR", "timestamp": 0})
    if kind == 7:
        return b""
    if kind == 8:
        return b'{"userId": "u", "amount": 5, "pad": "' + b"x" * 70_000 + b'"}'  # oversized
    if kind == 9:
        return orjson.dumps({"userId": "u", "amount": -1, "timestamp": 0})
    if kind == 10:
        return orjson.dumps({"userId": "u", "amount": 5, "timestamp": "not a time"})
    return orjson.dumps([{"userId": "u", "amount": 5, "timestamp": 0}])  # not an object


def test_hostile_messages_all_land_on_the_dlq_and_good_ones_are_processed(
    pipeline: Pipeline,
) -> None:
    rng = random.Random(5)
    messages: list[tuple[bytes | None, bytes]] = []
    good_ids = set()
    for i in range(HOSTILE):
        messages.append((f"bad-{i}".encode(), hostile(rng, i)))
        if i % (HOSTILE // GOOD) == 0:
            n = len(good_ids)
            good_ids.add(f"good-{n}")
            record = {"transactionId": f"good-{n}", "userId": f"u{n % 50}", "timestamp": n}
            amount = 20_000 if n % 100 == 0 else 10 + n % 90
            messages.append((f"u{n % 50}".encode(), orjson.dumps({**record, "amount": amount})))
    last_good = next(m for m in reversed(messages) if m[0] and m[0].startswith(b"u"))
    messages.append(last_good)  # a good message sent twice: not refused, decided once

    worker = pipeline.start_worker()
    pipeline.send(messages)
    stats = worker.wait_processed(len(messages), timeout=300)

    assert worker.alive()
    assert stats["dlq"] == HOSTILE
    assert stats["transactionsIn"] == len(good_ids) and stats["duplicates"] == 1
    dead = pipeline.read(pipeline.dlq_topic, expected=HOSTILE, timeout=120)
    assert len(dead) == HOSTILE
    assert {key for key, _ in dead} == {f"bad-{i}".encode() for i in range(HOSTILE)}
    assert all(record["reason"] and record["error"] for _, record in dead)
    reasons = {record["reason"] for _, record in dead}
    assert reasons == {"invalid_json", "invalid_field", "empty", "oversized", "not_an_object"}
    worker_log = worker.log_path.read_text()
    assert "Traceback" not in worker_log and "crashed" not in worker_log.lower()
