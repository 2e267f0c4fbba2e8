"""What amounts are common in a category: a worker-level profile of its regular customers.

A user's amount history mixes what they buy. Someone who pays 20-80 for groceries and fuel
and, once in a while, 500 for a flight has a 500 payment far above their habit, yet 500 is
an ordinary price for a flight. Where the input carries a category, this profile keeps the
amounts of each category (and channel) in bands a factor sqrt(2) apart, the amount segments'
bands (:func:`fraudstream.core.segments.amount_band`), as decayed counts over about its last
:data:`MEMORY` payments, and reports for a payment the share of the category's payments at
its band or above (``category_share``). It counts the payments of users who already pay in
the category (not ``new_category``): what the category's regular customers pay.

The detector uses it in two ways. A payment in a category the user has not paid in
recently (``new_category``) at an amount that at least ``common_category_share`` (the
setting ``FRAUDSTREAM_COMMON_CATEGORY_SHARE``, 5%) of the category's payments reach is
``category_common``, and an amount far above the user's habit is then no evidence by itself:
the habit says nothing about the category, the category says the amount is ordinary. In a
category the user does pay in, their own habit still rules (their habit *in* the category
where they have one, :mod:`fraudstream.core.behaviour`): a frugal user's ordinary-for-
the-category 90 grocery bill, after months of 10, stays a spike. And a run of amounts rare in
their category counts in the spree at its rarity (:func:`rarity_z`).

Measured offline without labels (the one set of defaults; streams without a category do not
change): Sparkov-style stream precision 0.555 -> 0.718, recall 0.393 -> 0.374, AP (7-day
block means) 0.327 -> 0.413; persona stream 0.897 / 0.389 -> 0.900 / 0.383. Gating every
category, not only new ones, took the Sparkov-style stream to 0.856 but cost the persona
stream a tenth of its card testing frauds (cash-out payments of ordinary size for the
category by frugal users).

Why only regular customers' payments: fraud that strikes a category new to its victim must
not teach the profile that its amounts are common. On a stream where fraud makes up most of
a category's payments (a simulator such as BankSim has categories like that), a profile of
every payment would call the fraud amounts ordinary and silence the amount evidence for the
next victim; and counting only payments that did not alert would feed back on itself (the
payments in question would be the ones left out). Measured without labels on the
Sparkov-style stream: counting every payment gave precision 0.689, counting regular
customers' 0.718.

**Without a category**, where the input names the merchant, the merchant's own payments stand
for its category (keys :data:`MERCHANT_PREFIX` + merchant, in the same bounded profile): a
payment at a merchant new to the user (``new_merchant``) at an amount at least 5% of the
merchant's payments reach is ``category_common``, and the spree counts the amount's rarity
there. A merchant has few regular customers (on the Sparkov-like stream 97% of payments are
at a merchant new to the card), so its profile counts instead the payments whose amount is
ordinary for the user who paid (``z`` under :data:`MERCHANT_ORDINARY_Z`), which keeps what
fraud pays out of it, and it speaks from :data:`MERCHANT_MIN_COUNT` payments. A user alerted
within :data:`MERCHANT_ALERT_HOLD` gets no such benefit of the doubt. Measured offline on
streams stripped of their categories (``fraudstream evaluate --drop-field category``),
precision / recall (AP, block means), without labels: Sparkov-like seed 1 0.443 / 0.295
(0.244) -> 0.584 / 0.397 (0.348), seed 7 0.525 / 0.362 (0.298) -> 0.655 / 0.422 (0.411);
BankSim-like 0.814 / 0.730 (0.741) -> 0.901 / 0.685 (0.776); with 7-day labels Sparkov-like
seed 1 0.668 / 0.409 (0.671) -> 0.705 / 0.433 (0.698), BankSim-like 0.805 / 0.783 (0.878) ->
0.861 / 0.791 (0.897). Before the hold, counting every payment gave the BankSim-like stream
0.904 / 0.602 (0.733), its fraud merchants' amounts having become ordinary, and counting
those under ``z`` 4.5 0.905 / 0.613. Streams with categories are unchanged; ours and the
handbook's, which have none, are unchanged too: their merchants are many and small.

Like Half-Space Trees, the profile learns from the traffic a worker decides and is part of
the detector's checkpoint; a redelivery is not counted again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

from fraudstream.core.segments import amount_band

#: The profile of a category remembers about this many of its payments (an exponential window).
MEMORY = 5000
#: A category's shares are reported once it has seen this many payments.
MIN_COUNT = 200
#: Where the input has no category: a merchant's profile reports from this many payments on
#: (it sees fewer than a category; on the Sparkov-like stream without its categories, seed 1,
#: counting every payment: 20 / 50 / 100 left 102 / 148 / 221 false alerts, for 244 / 244 / 238
#: frauds caught).
MERCHANT_MIN_COUNT = 20
#: A merchant's payments are counted in its profile where their amount is under this ``z`` for
#: the user who paid (see the module docstring).
MERCHANT_ORDINARY_Z = 3.0
#: A user alerted this recently (event time, seconds) gets no merchant's benefit of the doubt:
#: a card tested, then cashed out at ordinary amounts for the shop, is the persona stream's
#: card testing (without categories, seed 42: 0.58 of it caught with the doubt, 0.63 without).
MERCHANT_ALERT_HOLD = 86400.0
#: Profile keys of merchants standing in for categories start with this (no category does).
MERCHANT_PREFIX = "\x1emerchant:"
#: Bands kept per category: amounts up to 2**32, any currency's card amounts (above, the top).
BANDS = 64
#: At most this many categories are kept (the least recently paid in leaves first).
MAX_CATEGORIES = 4096
#: Weights are rescaled before they grow past this (each payment weighs 1 / (1 - 1/MEMORY)
#: times the one before, which is the same as decaying every earlier count).
_RESCALE_AT = 1e150
_GROWTH = 1.0 / (1.0 - 1.0 / MEMORY)
_NORMAL = NormalDist()


def rarity_z(share: float) -> float:
    """How rare a share of a category's payments is, as the normal quantile it cuts off: a
    payment only 2% of the category's payments reach is 2.05; an amount above everything the
    profile remembers counts as one in :data:`MEMORY`.

    >>> round(rarity_z(0.02), 2), round(rarity_z(0.5), 2), round(rarity_z(0.0), 2)
    (2.05, 0.0, 3.54)
    """
    return _NORMAL.inv_cdf(1.0 - min(max(share, 1.0 / MEMORY), 1.0 - 1.0 / MEMORY))


def band_of(amount: float) -> int:
    """The amount's band, the top band for anything above it.

    >>> band_of(500.0), band_of(1e12)
    (17, 63)
    """
    return min(amount_band(amount), BANDS - 1)


@dataclass(slots=True, init=False)
class CategoryAmounts:
    """Decayed counts of a category's payments per amount band (up to the highest band seen).

    >>> amounts = CategoryAmounts()
    >>> amounts.share_at_or_above(band_of(500.0))
    0.0
    >>> for i in range(300):
    ...     amounts.observe(band_of(40.0 if i % 10 else 500.0))
    >>> [round(amounts.share_at_or_above(band_of(a)), 2) for a in (40.0, 500.0, 900.0)]
    [1.0, 0.1, 0.0]
    """

    counts: list[float] = field(default_factory=list)
    total: float = 0.0
    weight: float = 1.0
    seen: int = 0

    def __init__(
        self,
        counts: list[float] | None = None,
        total: float = 0.0,
        weight: float = 1.0,
        seen: int = 0,
    ) -> None:
        # written out so that mypyc compiles it (see fraudstream.native)
        self.counts = [] if counts is None else counts
        self.total = total
        self.weight = weight
        self.seen = seen

    def share_at_or_above(self, band: int) -> float:
        """The share of the remembered payments at ``band`` or above (0 while the category
        has seen fewer than :data:`MIN_COUNT`)."""
        return self.known_share(band) or 0.0

    def known_share(self, band: int, min_count: int | None = None) -> float | None:
        """The share of the remembered payments at ``band`` or above, None while fewer than
        ``min_count`` (:data:`MIN_COUNT`) were seen: too young to say."""
        if self.seen < (MIN_COUNT if min_count is None else min_count):
            return None
        if self.total <= 0.0:
            return 0.0
        return sum(self.counts[band:]) / self.total  # the list ends at the highest band seen

    def observe(self, band: int) -> None:
        """Count one payment in ``band``; earlier ones fade by a factor ``1 - 1/MEMORY``."""
        counts = self.counts
        if band >= len(counts):
            counts.extend([0.0] * (band + 1 - len(counts)))
        counts[band] += self.weight
        self.total += self.weight
        self.seen += 1
        self.weight *= _GROWTH
        if self.weight > _RESCALE_AT:
            scale = 1.0 / self.weight
            self.counts = [count * scale for count in counts]
            self.total *= scale
            self.weight = 1.0


#: What a checkpoint keeps of :class:`CategoryProfiles`: the bound, and per key the decayed
#: counts, their total, the current weight and how many payments were seen.
CategoryState = tuple[int, dict[str, tuple[list[float], float, float, int]]]


@dataclass(slots=True)
class CategoryProfiles:
    """:class:`CategoryAmounts` per category and channel, bounded to :data:`MAX_CATEGORIES`.

    >>> profiles = CategoryProfiles()
    >>> for _ in range(200):
    ...     profiles.observe("travel", "online", 500.0)
    >>> profiles.share("travel", "online", 500.0), profiles.share("travel", "pos", 500.0)
    (1.0, 0.0)
    """

    categories: dict[str, CategoryAmounts] = field(default_factory=dict)
    max_categories: int = MAX_CATEGORIES

    def to_state(self) -> CategoryState:
        """Plain values for the detector's checkpoint, the same whether this module runs
        compiled or not (a pickled instance of the compiled class does not load into the pure
        one, nor the other way round).

        >>> profiles = CategoryProfiles()
        >>> profiles.observe("travel", "online", 500.0)
        >>> CategoryProfiles.from_state(profiles.to_state()) == profiles
        True
        """
        amounts = {
            key: (list(a.counts), a.total, a.weight, a.seen) for key, a in self.categories.items()
        }
        return self.max_categories, amounts

    @classmethod
    def from_state(cls, state: CategoryState) -> CategoryProfiles:
        """The profiles :meth:`to_state` described; TypeError or ValueError on another shape."""
        max_categories, amounts = state
        categories = {
            str(key): CategoryAmounts([float(c) for c in counts], float(total), float(w), int(n))
            for key, (counts, total, w, n) in amounts.items()
        }
        return cls(categories, int(max_categories))

    def share(self, category: str | None, channel: str | None, amount: float) -> float:
        """The share of the category's payments at this amount or above.

        0 without a category (no profile to judge by) and while the category is young.
        """
        return self.share_then_count(category, channel, amount, count=False) or 0.0

    def observe(self, category: str | None, channel: str | None, amount: float) -> None:
        """Count one payment in its category (nothing without a category)."""
        self.share_then_count(category, channel, amount, count=True)

    def share_then_count(
        self,
        category: str | None,
        channel: str | None,
        amount: float,
        count: bool,
        min_count: int | None = None,
    ) -> float | None:
        """:meth:`share`, then, if ``count``, :meth:`observe`: one key and one band for both.

        None where :meth:`share` says 0 for want of a profile (no category, or one that has
        seen fewer than ``min_count``, by default :data:`MIN_COUNT`, payments), so that 0 is an
        amount above everything the category's profile remembers.
        """
        if not category:
            return None
        key = f"{category}|{channel or ''}"
        band = band_of(amount)
        if not count:
            amounts = self.categories.get(key)
            return None if amounts is None else amounts.known_share(band, min_count)
        amounts = self.categories.pop(key, None)  # re-inserted last: most recently paid in
        if amounts is None:
            amounts = CategoryAmounts()
            if len(self.categories) >= self.max_categories:
                del self.categories[next(iter(self.categories))]
        self.categories[key] = amounts
        share = amounts.known_share(band, min_count)
        amounts.observe(band)
        return share

    def merchant_share_then_count(
        self, merchant: str, channel: str | None, amount: float, count: bool
    ) -> float | None:
        """:meth:`share_then_count` with the merchant's own payments standing for a category,
        for a stream without categories (see the module docstring), from
        :data:`MERCHANT_MIN_COUNT` payments on.

        >>> profiles = CategoryProfiles()
        >>> for k in range(30):
        ...     _ = profiles.merchant_share_then_count("M1", None, 500.0 if k % 5 else 40.0, True)
        >>> round(profiles.merchant_share_then_count("M1", None, 480.0, False), 2)
        0.8
        >>> profiles.share("M1", None, 480.0)  # not a category's name
        0.0
        """
        return self.share_then_count(
            MERCHANT_PREFIX + merchant, channel, amount, count, MERCHANT_MIN_COUNT
        )
