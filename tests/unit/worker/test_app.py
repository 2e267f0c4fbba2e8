"""The Faust app the worker runs, as ``create_app`` configures it from the settings."""

from __future__ import annotations

import pytest

from fraudstream.settings import Settings
from fraudstream.worker.app import create_app


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
