"""The unit the detector reads amounts in: a power of ten when amounts are in another unit.

The behaviour features read amounts on ``log(1 + amount)``, a log scale only well above 1,
and every default (the classifier's amount hinges, the amount bands of categories and
segments, the priors of a user's spread) was measured on streams whose typical payment is tens
of its unit (every generator's median is 21-70). The same stream in cents lost a few
hundredths of precision and AP, and in hundreds (amounts mostly below 1) it flooded with
false alerts (Sparkov-like: precision 0.712 -> 0.245; x0.1 already 0.529). So when the median
of the stream's first amounts is outside [10, 1000] (:data:`USUAL_MEDIAN`), the detector
divides every amount that enters a feature by the power of ten that puts that median in
[10, 100). A stream whose median is within keeps unit 1 and every figure it had; the range is
wide so that few streams sit near its edges, where two samples of the same stream could choose
different units (x10 costs only a few hundredths, so the upper edge is far). The
configured amount threshold and the rules' own amounts stay in the stream's unit: they are
what the user wrote.

The unit is decided once, from the first :data:`UNIT_SAMPLE` amounts (a worker decides on its
first batch, usually larger), and never changes after: a history learned in one unit is not
comparable with amounts in another. The worker writes its checkpoint as soon as the unit is
decided, before any state learned in it is committed, so a restart reads on in the same unit.
Until then amounts are read in unit 1, as before this existed. ``FRAUDSTREAM_AMOUNT_UNIT``
fixes it instead.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable
from typing import Generic, TypeVar

#: Amounts the unit is chosen from: the first this many (all of a larger first batch).
UNIT_SAMPLE = 100
#: Amounts kept while deciding, at most (a first batch of a backlog can be large).
UNIT_SAMPLE_MAX = 2000
#: A median of the first amounts in this range keeps unit 1.
USUAL_MEDIAN = (10.0, 1000.0)

V = TypeVar("V")


class FirstSample(Generic[V]):
    """A stream's first values, that something of the stream is decided from once: the first
    :data:`UNIT_SAMPLE` (all of a larger first batch, up to :data:`UNIT_SAMPLE_MAX`).

    >>> sample: FirstSample[int] = FirstSample()
    >>> sample.take(range(99)) is None, len(sample.take(range(5)) or [])
    (True, 104)
    """

    def __init__(self) -> None:
        self._values: list[V] = []

    def take(self, values: Iterable[V]) -> list[V] | None:
        """Add ``values``; the whole sample once it holds enough (and start afresh), else None."""
        self._values.extend(itertools.islice(values, UNIT_SAMPLE_MAX - len(self._values)))
        if len(self._values) < UNIT_SAMPLE:
            return None
        full, self._values = self._values, []
        return full

    def clear(self) -> None:
        """Forget what was taken (the thing is known otherwise: fixed or restored)."""
        self._values = []


def unit_exponent(median: float) -> int:
    """0 for a median in :data:`USUAL_MEDIAN` (or none at all), else the power of ten (its
    exponent) that puts ``median`` in [10, 100).

    >>> unit_exponent(47.0), unit_exponent(4700.0), unit_exponent(0.47), unit_exponent(4.7)
    (0, 2, -2, -1)
    >>> unit_exponent(1000.0), unit_exponent(0.0), unit_exponent(float("nan"))
    (0, 0, 0)
    """
    low, high = USUAL_MEDIAN
    if not median > 0.0 or not math.isfinite(median) or low <= median <= high:
        return 0
    exponent = math.floor(math.log10(median)) - 1
    if median / 10.0**exponent >= 100.0:  # log10 rounds down at an exact power of ten
        exponent += 1
    return exponent


class AmountUnit:
    """The detector's amount unit: fixed by the settings, or decided from the first amounts.

    >>> unit = AmountUnit()
    >>> unit.observe([4700.0] * 99), unit.exponent  # not enough amounts yet: unit 1 meanwhile
    (False, None)
    >>> unit.scale(4700.0)
    4700.0
    >>> unit.observe([3100.0, 5200.0]), unit.value, unit.scale(4700.0)
    (True, 100.0, 47.0)
    >>> unit.observe([0.3] * 500), unit.value  # decided once, for good
    (False, 100.0)
    >>> AmountUnit(0.01).scale(0.47)
    47.0
    """

    def __init__(self, fixed: float | None = None) -> None:
        #: The unit's power of ten (None until decided); a fixed unit is decided from the start.
        self.exponent: int | None = None
        #: Whether the settings fixed the unit (a checkpoint's does not override it then).
        self.fixed = fixed is not None
        self.median: float | None = None  # of the amounts it was decided from
        self._divisor: float | None = None  # a fixed unit that is no power of ten
        self._sample: FirstSample[float] = FirstSample()
        self._decided_from = 0
        if fixed is not None:
            exponent = math.log10(fixed)
            if abs(exponent - round(exponent)) < 1e-9:
                self.exponent = round(exponent)
            else:
                self.exponent, self._divisor = 0, fixed

    @property
    def decided(self) -> bool:
        """Whether the unit is known (fixed, decided from the sample, or restored)."""
        return self.exponent is not None

    @property
    def value(self) -> float:
        """The unit amounts are divided by (1 until decided)."""
        if self._divisor is not None:
            return self._divisor
        return 10.0 ** (self.exponent or 0)

    @property
    def known(self) -> float | None:
        """The unit, or None until it is decided (what ``/stats`` and ``evaluate`` report)."""
        return self.value if self.exponent is not None else None

    def observe(self, amounts: Iterable[float]) -> bool:
        """Take amounts into the sample until the unit is decided; True when this call decided
        it (all the amounts given count, so a large first batch decides on all of it)."""
        if self.exponent is not None:
            return False
        sample = self._sample.take(a for a in amounts if math.isfinite(a))
        if sample is None:
            return False
        self.median = statistics.median(sample)
        self.exponent = unit_exponent(self.median)
        self._decided_from = len(sample)
        return True

    def scale(self, amount: float) -> float:
        """``amount`` in the detector's unit (a multiplication by a power of ten below 1: amounts
        in hundreds come back to within a rounding of the same stream in its own unit).

        >>> unit = AmountUnit()
        >>> unit.exponent = -2
        >>> unit.scale(0.25)
        25.0
        """
        if self._divisor is not None:
            return amount / self._divisor
        exponent = self.exponent
        if not exponent:
            return amount
        if exponent > 0:
            return amount / 10**exponent
        return amount * 10**-exponent

    def describe(self) -> str:
        """One line for the log: the unit and where it came from.

        >>> unit = AmountUnit()
        >>> unit.observe([0.25, 0.5, 0.75] * 40)
        True
        >>> print(unit.describe())  # doctest: +ELLIPSIS
        amounts are read in units of 0.01: the median of the first 120 amounts is 0.5 ...
        >>> print(AmountUnit(1.0).describe())
        amounts are read in units of 1 (FRAUDSTREAM_AMOUNT_UNIT)
        """
        unit = f"amounts are read in units of {self.value:g}"
        if self.fixed:
            return f"{unit} (FRAUDSTREAM_AMOUNT_UNIT)"
        if self.median is None:
            return f"{unit} (from the checkpoint)"
        return (
            f"{unit}: the median of the first {self._decided_from:,} amounts is "
            f"{self.median:,.4g} (the features read a typical payment as tens; the amount "
            "threshold and the rules keep the stream's unit; FRAUDSTREAM_AMOUNT_UNIT fixes it)"
        )

    def restore(self, exponent: int | None) -> None:
        """Continue with a checkpoint's unit (a fixed one wins: the settings say it)."""
        if not self.fixed and exponent is not None:
            self.exponent = exponent
            self._sample.clear()
