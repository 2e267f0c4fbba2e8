"""Keep an outage from flooding the log: one line per repeated message and interval.

The package's one log throttle. While no broker answers, aiokafka retries every ~100 ms and
logs each failure at ERROR (measured: ~120 lines/s from one worker); an unreachable InfluxDB
makes the sink fail the same way. :class:`RepeatThrottle` lets the first occurrence of each
key through, drops repeats for ``interval`` seconds, and says how many it dropped on the
next one it lets through; :class:`RepeatedMessageFilter` applies it to a library's logger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

#: Loggers whose retry loops repeat themselves during an outage.
NOISY_LOGGERS = ("aiokafka",)


class RepeatThrottle:
    """Decide whether an occurrence of ``key`` is logged; count the ones that are not.

    >>> clock = iter([0.0, 1.0, 2.0, 11.0]).__next__
    >>> throttle = RepeatThrottle(10.0, clock)
    >>> [throttle.admit("down") for _ in range(4)]
    [(True, ''), (False, ''), (False, ''), (True, ' (2 more like this in 11 s)')]
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last_passed: dict[Hashable, float] = {}
        self._dropped: dict[Hashable, int] = {}

    def admit(self, key: Hashable) -> tuple[bool, str]:
        """Whether to log this occurrence, and a suffix telling how many were dropped before it."""
        now = self.clock()
        last = self._last_passed.get(key)
        if last is not None and now - last < self.interval:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False, ""
        self._last_passed[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped and last is not None:
            return True, f" ({dropped} more like this in {now - last:.0f} s)"
        return True, ""


class RepeatedMessageFilter(logging.Filter):
    """Pass a message template at most once per ``interval`` seconds; count the rest."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.throttle = RepeatThrottle(interval, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit ``record``; a repeat within the interval is dropped and counted."""
        passed, suffix = self.throttle.admit((record.name, record.levelno, str(record.msg)))
        if suffix:
            record.msg = f"{record.msg}{suffix}"
        return passed


def throttle_noisy_loggers(interval: float) -> RepeatedMessageFilter:
    """Install one filter on every logger of :data:`NOISY_LOGGERS` that exists now.

    Logger filters do not apply to child loggers, so each existing child gets it; call this
    after the client libraries are imported.
    """
    repeat_filter = RepeatedMessageFilter(interval)
    names = [
        name
        for name in logging.root.manager.loggerDict
        if any(name == root or name.startswith(f"{root}.") for root in NOISY_LOGGERS)
    ]
    for name in names:
        logging.getLogger(name).addFilter(repeat_filter)
    return repeat_filter
