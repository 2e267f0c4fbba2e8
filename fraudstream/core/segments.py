"""Amount segments: the label-derived fraud risk of an amount band within a category and channel.

Fraud concentrates at amounts that are unusual *for what is bought*: a 300 grocery bill, a
1,000 online order, a 2 "test" at a petrol station. The classifier sees the amount (its hinges)
and the category only through the user's novelty flags, and a linear model cannot learn an
interaction of the two. A segment is that interaction, learned from labels the way a
merchant's risk is (:class:`fraudstream.core.merchants.MerchantStats`: the decayed share of
confirmed fraud over 30 days, shrunk towards the global rate while evidence is thin), keyed
by the category and the channel (each empty when the input has none; with neither, the amount
band is left alone, and a step such as "every amount above 220 is riskier" becomes learnable
as a band's risk) and the amount in bands a factor sqrt(2) apart, the classifier's hinge
spacing. There are a few hundred to a few thousand segments, so every one gathers labels
quickly, where one merchant rarely does.

Measured offline with a batch logistic regression on the classifier's features, 7-day labels,
average precision on the last weeks: Sparkov-style stream 0.62 -> 0.79 with this risk as
log-odds (bands a factor 2 apart: 0.77; the category's risk alone: 0.62). The channel in the
key: persona stream (online payments and card-present ones in the same categories), online
learning, AP 0.674 -> 0.704 (block means); Sparkov unchanged (its channel follows from the
category).
"""

from __future__ import annotations

import math

from fraudstream.core.merchants import MerchantStats

#: Bands per doubling of (1 + amount): 2 puts band edges a factor sqrt(2) apart.
BANDS_PER_DOUBLING = 2
#: Log-odds are clipped here (a segment with nothing but fraud is not infinitely risky).
LOG_ODDS_CLIP = 12.0


def amount_band(amount: float) -> int:
    """The amount's band: bands are a factor sqrt(2) apart in ``1 + amount``, from 0 up.

    >>> amount_band(0.0), amount_band(1.0), amount_band(300.0)
    (0, 2, 16)
    """
    return int(BANDS_PER_DOUBLING * math.log2(1.0 + max(amount, 0.0)))


def segment_key(category: str | None, channel: str | None, amount: float) -> str:
    """The segment of a transaction: ``<category>|<channel>|<band>``.

    >>> segment_key("grocery", "pos", 300.0), segment_key(None, None, 300.0)
    ('grocery|pos|16', '||16')
    >>> segment_key("gas", None, 0.0)
    'gas||0'
    """
    return f"{category or ''}|{channel or ''}|{amount_band(amount)}"


def segment_log_odds(stats: MerchantStats | None, global_rate: float) -> float:
    """The segment's 30-day fraud risk as log-odds (the global rate's for an unknown segment).

    >>> round(segment_log_odds(None, 0.01), 2)
    -4.6
    """
    risk = global_rate if stats is None else stats.risk_30d(global_rate)
    risk = min(max(risk, 1e-9), 1.0 - 1e-9)
    return max(-LOG_ODDS_CLIP, min(LOG_ODDS_CLIP, math.log(risk / (1.0 - risk))))
