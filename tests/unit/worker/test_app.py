"""The Faust app the worker runs, as ``create_app`` configures it from the settings."""

from __future__ import annotations

import pytest
from faust.exceptions import ConsumerNotStarted

from fraudstream.settings import Settings
from fraudstream.worker.app import create_app
from fraudstream.worker.web import assigned_input_partitions


def test_the_producer_sends_record_batches_as_large_as_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's producer (changelogs and outputs) builds its batches at the configured size."""
    assert create_app(Settings()).conf.producer_max_batch_size == 524288
    monkeypatch.setenv("FRAUDSTREAM_PRODUCER_MAX_BATCH_BYTES", "65536")
    assert create_app(Settings()).conf.producer_max_batch_size == 65536


def test_a_batch_size_over_kafkas_default_message_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_PRODUCER_MAX_BATCH_BYTES", str(2 * 1024 * 1024))
    with pytest.raises(ValueError, match="producer_max_batch_bytes"):
        Settings()


def test_health_asked_before_the_consumer_thread_starts_says_no_partitions_yet() -> None:
    """Faust starts the web server before the consumer's thread: /health asked in between
    answered 500 with a traceback in the worker's log; it now counts no partitions yet."""
    app = create_app(Settings())
    with pytest.raises(ConsumerNotStarted):
        app.consumer.assignment()
    assert assigned_input_partitions(app, "transactions-input") == 0
