"""A repeated client message is logged once per interval, with a count of the repeats."""

from __future__ import annotations

import logging

import pytest

from fraudstream.log_throttle import RepeatedMessageFilter, throttle_noisy_loggers


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, name: str = "aiokafka.client") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_repeats_within_the_interval_are_dropped_and_counted_on_the_next_line() -> None:
    clock = Clock()
    repeat_filter = RepeatedMessageFilter(10.0, clock)
    template = "Unable connect to node with id %s: %s"
    assert repeat_filter.filter(record(template, 111, "refused"))
    passed = []
    for step in range(1, 100):
        clock.now = step * 0.1
        passed.append(repeat_filter.filter(record(template, 111, "refused")))
    assert not any(passed)
    clock.now = 10.0
    again = record(template, 111, "refused")
    assert repeat_filter.filter(again)
    assert again.getMessage() == (
        "Unable connect to node with id 111: refused (99 more like this in 10 s)"
    )


def test_other_messages_and_levels_pass_independently() -> None:
    repeat_filter = RepeatedMessageFilter(10.0, Clock())
    assert repeat_filter.filter(record("Failed fetch messages from %s"))
    assert repeat_filter.filter(record("Unable to update metadata from %s"))
    warning = record("Failed fetch messages from %s")
    warning.levelno = logging.WARNING
    assert repeat_filter.filter(warning)
    assert repeat_filter.filter(record("Failed fetch messages from %s", name="aiokafka.conn"))


def test_every_existing_aiokafka_logger_gets_the_filter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import aiokafka.consumer.fetcher  # noqa: F401  - creates the client's loggers

    repeat_filter = throttle_noisy_loggers(10.0)
    client_log = logging.getLogger("aiokafka")  # aiokafka.client logs here
    try:
        with caplog.at_level(logging.ERROR, logger="aiokafka"):
            for _ in range(50):
                client_log.error("Unable to update metadata from %s", [111])
        assert len(caplog.records) == 1
        assert repeat_filter in logging.getLogger("aiokafka.consumer.fetcher").filters
        assert repeat_filter not in logging.getLogger("fraudstream").filters
    finally:
        for logger in logging.root.manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                logger.removeFilter(repeat_filter)
