"""Whether a stream's amounts are in the unit the detector's defaults were measured in.

The detector reads amounts on ``log(1 + amount)``, a log scale only well above 1, and every
default was chosen on streams whose typical payment is tens of its unit. Measured (README,
"Amounts in another unit"): amounts x100 (cents) cost a few hundredths of precision and AP,
amounts x0.01 flood with false alerts (Sparkov-like stream: precision 0.712 -> 0.245). Until
the detector learns the unit itself, the worker says so once, from the median of its first
:data:`SAMPLE` amounts, rather than letting a user discover it from the alerts.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

#: Amounts the check looks at before it speaks (once).
SAMPLE = 1000
#: Typical payments (the sample's median) outside this range are named in a warning.
USUAL_MEDIAN = (1.0, 1000.0)


@dataclass(slots=True)
class AmountUnitCheck:
    """Collects the first :data:`SAMPLE` amounts, then gives one warning if their median is
    outside :data:`USUAL_MEDIAN`, and nothing ever after.

    >>> check = AmountUnitCheck(sample=3)
    >>> said = [check.observe(amount) for amount in (0.2, 0.5, 0.4, 0.3)]
    >>> said[:2], said[3], said[2].split(":")[0]
    ([None, None], None, 'the median of the first 3 amounts is 0.4')
    >>> check = AmountUnitCheck(sample=3)
    >>> [check.observe(amount) for amount in (20.0, 50.0, 40.0)]
    [None, None, None]
    """

    sample: int = SAMPLE
    amounts: list[float] = field(default_factory=list)
    done: bool = False

    def observe(self, amount: float) -> str | None:
        """Count one amount; the warning, the one time there is one to give."""
        if self.done:
            return None
        self.amounts.append(amount)
        if len(self.amounts) < self.sample:
            return None
        self.done = True
        median = statistics.median(self.amounts)
        self.amounts = []
        low, high = USUAL_MEDIAN
        if low <= median <= high:
            return None
        how = "mostly below 1 far worse" if median < low else "this large somewhat worse"
        return (
            f"the median of the first {self.sample:,} amounts is {median:,.4g}: the detector's "
            f"defaults were measured on streams whose typical payment is tens of their unit, "
            f"and judge amounts {how}; send amounts in the currency's main unit if you can "
            "(README: Amounts in another unit)"
        )
