"""Keep a broker outage from flooding the log: one line per repeated message and interval.

While no broker answers, aiokafka retries every ~100 ms and logs each failure at ERROR
(measured: ~120 lines/s from one worker). :class:`RepeatedMessageFilter` lets the first
record of each message template through, drops repeats for ``interval`` seconds, and says
how many it dropped on the next one it lets through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Loggers whose retry loops repeat themselves during an outage.
NOISY_LOGGERS = ("aiokafka",)


class RepeatedMessageFilter(logging.Filter):
    """Pass a message template at most once per ``interval`` seconds; count the rest."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last_passed: dict[tuple[str, int, str], float] = {}
        self._dropped: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit ``record``; a repeat within the interval is dropped and counted."""
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._last_passed.get(key)
        if last is not None and now - last < self.interval:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last_passed[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped and last is not None:
            record.msg = f"{record.msg} ({dropped} more like this in {now - last:.0f} s)"
        return True


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
