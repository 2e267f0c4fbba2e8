"""Per-user history (O(1), well under 1 KiB encoded) and the behaviour features derived from it.

Every feature measures a transaction against the user's *own* history, so nothing depends on
a stream's currency, amount distribution or activity level. Why each is scaled as it is:

* Amount: a robust online location and spread twice, on raw amounts and on ``log1p(amount)``
  (residuals Huber-clipped at :data:`HUBER` spreads, step ``1/min(n, MEMORY)``), each giving a
  predictive z-score. Which scale fits *this* user is learned: a decayed log-likelihood ratio of
  a normal against a log-normal model of the user's own amounts (remembering about
  :data:`LLR_MEMORY` of them, four times the estimates' memory: the two models differ little
  per amount) gives ``w_raw = sigmoid(LLR)``
  (each amount's vote bounded, the log scale's more tightly: large amounts, its evidence, are
  also where fraud lands), and the blended ``z`` moves from the conservative median(z_raw,
  z_log, 0) towards the preferred scale as the evidence grows. A normal spender (amounts N(mu,
  mu/2)) ends up on the raw scale, where five times the habit is z ~ 8; a log-normal spender on
  the log scale, where an ordinary tenfold purchase is z ~ 3 rather than the raw z ~ 15. The two
  differ by a few hundredths of a nat per amount, so a user's own evidence decides slowly: it
  starts from the stream's (:class:`ScaleEvidence`, worth :data:`SCALE_PRIOR_WEIGHT` of the
  user's amounts), since the users of one stream mostly spend alike. While
  history is short the spread is shrunk towards a weak prior worth :data:`PRIOR_WEIGHT`
  transactions and widened by ``1 + 1/n`` for the uncertainty of the mean; ``z_habit`` is the
  log-scale z-score of the earlier design (prior spread 0.6), which the habit-spike rule keeps
  using.
* Windows (1 min, 1 h, 1 day, 7 days, 30 days): exponentially decayed count and amount sums
  of the user's unalerted transactions (two floats per window), reported as log ratios against
  what the user's *own usual rate* predicts for the window, so "5 in an hour" is a burst for a
  weekly spender and nothing for a commuter. For 1 min and 1 h the usual level is the user's
  *Palm mean* (decayed mean of the window count seen at the user's own transactions, so
  clustered habits count as habit) and ``rate_z_*`` is the normal equivalent of the Poisson
  tail P(N >= count | Palm mean). The gap these decays read is to the user's nearest payment
  (:meth:`BehaviourFeatures.gap`): a payment that arrives after a newer one is read as far from
  its neighbours as it happened, and added to the windows as faded as it is at the newest.
* Time of day: decayed mean direction of the hour on the circle; ``tod_dev`` is
  ``R * (1 - cos(angle - mean)) / 2``, 0 for users without a habit (R ~ 0).
* Novelty (merchant, country, channel, category): small sets of 32-bit hashes of the most
  recent distinct values plus the user's own novelty rate ``p_new``; ``surprise_*`` is
  ``new * (1 - p_new)``, so a user who always shops somewhere new is not surprising.
* Recurring amounts: a payment within :data:`RECURRING_TOLERANCE` (log scale, ~±28%) of the
  amount of the user's newest alert, after :data:`RECURRING_GAP_SECONDS` without any alert, is
  an amount the user pays from time to time (a yearly fee, a trip, rent), not a spike:
  ``recurring`` is 1 and the amount z-scores are capped at :data:`HABIT_EXCESS_START`, where
  ordinary variation ends. Alerted amounts are never learned, so without this a legitimate
  large payment that comes back every few weeks is alerted every time; a fraud spree alerts
  more often than every week (the lowered line after an alert is for that).
* Spree: a CUSUM of the amount's ``z`` over the user's transactions, ``spree = max(0,
  previous * exp(-gap / SPREE_TAU) + min(z - SPREE_SLACK, SPREE_STEP_CAP))``: each payment
  above :data:`SPREE_SLACK` standard units adds its excess (at most :data:`SPREE_STEP_CAP`, so
  it takes two), each ordinary one takes a little back, and it fades over days. A card fraud
  episode is often several payments that are each only moderately unusual (z ~2: amounts
  the user has made before, in categories they use), which no single-amount line can take
  without alerting on every ordinary tail; a run of them within days is what the user's own
  spending rarely does. In z units, like ``z``. Alerted payments count too. Where the input
  carries a category, the payment's ``z`` is first lifted towards how rare its amount is in
  the category (``spree_z``, by at most :data:`SPREE_CATEGORY_LIFT`; see
  :meth:`BehaviourFeatures.lift_spree`).
* The user's own habit in a category: for the :data:`CATEGORY_HABITS` categories the user
  most recently paid in, how many of the user's learned payments were there and their decayed
  mean ``log1p(amount)`` (kept apart from the novelty set, whose eight categories make a
  category the user has not paid in for a while "new" again, as the category profile wants). From
  :data:`CATEGORY_HABIT_MIN` payments there on, an amount within :data:`CATEGORY_HABIT_Z` of
  the user's log spread of their typical amount in the category is ``category_usual``: the
  detector then takes it as no amount evidence (``category_common``), as it does an amount
  common among the category's regular customers in a category new to the user. A user's
  amounts mix what they buy; someone who books a 500 trip every month pays 50 for everything
  else, and their trips are far above their overall habit but ordinary for them in travel.
* Place: decayed centre of the coordinates and mean distance to it; ``distance`` is
  ``log1p(distance / mean distance)``, unit-free (grid or degrees alike).

Besides the features, the history keeps the user's latest transactions (time and amount, at
most :data:`RECENT_TRANSACTIONS` within :data:`RECENT_WINDOW_SECONDS` of the newest), which
velocity rules count exactly (:meth:`UserHistory.recent_activity`).

Absent optional fields give neutral (0) features and leave their state untouched.
"""

from __future__ import annotations

import bisect
import math
import struct
import zlib
from dataclasses import dataclass, field
from statistics import NormalDist

from fraudstream.core.clock import ClockStep
from fraudstream.core.records import Transaction

#: Memory of the per-user estimates, in transactions (step ``1/min(n, MEMORY)``).
MEMORY = 50
#: Residuals beyond this many spreads are clipped when updating (robust to outliers and fraud).
HUBER = 3.0
#: Weight, in transactions, of the prior spread while history is short.
PRIOR_WEIGHT = 2.0
#: Prior coefficient of variation of raw amounts, and prior spread of log amounts.
PRIOR_CV_RAW = 0.5
PRIOR_SD_LOG = 0.5
#: Prior spread of log amounts for ``z_habit`` (typical card users: 0.35-0.8), and its weight.
HABIT_PRIOR_SD_LOG = 0.6
HABIT_PRIOR_WEIGHT = 2.0
#: Each transaction's normal-vs-log-normal log-likelihood ratio is clipped to
#: [-LLR_CLIP_LOG, LLR_CLIP_RAW]. Evidence for the log scale comes from large amounts, which is
#: where fraud lands (five times the habit): one missed fraud may count less than a small
#: amount the log scale finds implausible, which fraud does not fake. Measured: handbook
#: compromised-customer recall 0.71 -> 0.77 without labels (symmetric +-4 -> 4 and 2; 1.5 with
#: the predictive spreads).
LLR_CLIP_RAW = 4.0
LLR_CLIP_LOG = 1.5
#: Memory of that evidence, in transactions (the ratio decays by ``1 - 1/LLR_MEMORY``). A
#: normal spender with amounts N(mu, mu/2) and a log-normal one differ by a few hundredths of
#: a nat per amount, so fifty amounts of evidence left many normal spenders undecided, where
#: the blended z is the lower, log-scale one, and a few missed frauds (learned as ordinary, each
#: a vote for the log scale) tipped them over. Measured without labels, 150 to 1,000 alike:
#: handbook compromised-customer recall 0.770 -> 0.799, Sparkov precision 0.278 -> 0.286,
#: personas precision 0.889 -> 0.904 (recall 0.354 -> 0.389); our stream unchanged.
LLR_MEMORY = 200
#: A user's evidence for the raw against the log scale starts from the stream's mean evidence
#: per amount (:class:`ScaleEvidence`, over about POPULATION_MEMORY learned amounts) times this
#: many amounts. The mean is a stream's signature: per amount -0.17 on ours, -0.30 Sparkov-like,
#: -0.16 BankSim-like, -0.18 personas, -0.42 TabFormer-shaped (log-normal spenders), +0.14 on
#: the handbook's (normal ones); at 50 a young history takes the stream's side by ~7-20 nats,
#: which its own amounts overturn within about its first hundred. Measured without labels
#: (offline, precision / recall (AP)): handbook 0.982 / 0.265 (0.320) -> 0.994 / 0.276 (0.330),
#: compromised customers 0.796 -> 0.829 (its normal spenders' x5 payments, missed at z_log ~2.5
#: where the young evidence leaned to the log scale); ours 0.970 / 0.902 (0.934) -> 0.982 /
#: 0.923 (0.954), Sparkov-like 0.712 / 0.384 (0.409) -> 0.760 / 0.381 (0.449), BankSim-like
#: 0.873 / 0.710 (0.773) -> 0.936 / 0.688 (0.818), personas 0.897 / 0.386 (0.475) -> 0.925 /
#: 0.412 (0.504).
SCALE_PRIOR_WEIGHT = 50.0
POPULATION_MEMORY = 10_000
#: The stream's evidence counts in full from this many learned amounts (in part before).
POPULATION_MIN = 1_000
#: A category's habit speaks from this many of the user's learned payments there, and an amount
#: within this many of the user's log spreads of their mean there is ``category_usual``; the
#: mean remembers about CATEGORY_HABIT_MEMORY payments. Screened on logged features (offline,
#: without labels; 2, 3 and 5 payments, 1.0 to 2.0 spreads): at 3 and 1.5 the Sparkov-like
#: stream's false alerts on seeds 1 / 42 / 7 fell by 30 / 21 / 30 for 3 / 1 / 0 frauds (its
#: travel bookings: 169 of 184 of its false alerts involving Half-Space Trees were travel),
#: personas by 11 for 2, BankSim-like by 0 for 2; at 2 payments BankSim-like lost 6 frauds.
#: Measured through the handler, without labels: Sparkov-like precision 0.733 / 0.655 / 0.707
#: -> 0.771 / 0.708 / 0.761 (seeds 42 / 1 / 7) at the same recall (seed 1: 0.389 -> 0.384),
#: personas 0.876 -> 0.881, BankSim-like one fraud fewer; streams without a category unchanged.
CATEGORY_HABIT_MIN = 3
CATEGORY_HABIT_Z = 1.5
CATEGORY_HABIT_MEMORY = 20
#: Categories whose habit is kept (the least recently paid in leaves first): Sparkov-style
#: card holders spread over 14.
CATEGORY_HABITS = 16
#: Window time constants, seconds, and their names in the features.
WINDOWS = (60.0, 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)
WINDOW_NAMES = ("1m", "1h", "1d", "7d", "30d")
#: Prior of the usual rate: one transaction per day, worth one day of observation.
PRIOR_RATE_PER_DAY = 1.0
#: Prior of the Palm mean (earlier transactions within 1 min / 1 h of one), worth
#: PALM_PRIOR_WEIGHT transactions: a new user is not judged on nothing.
PRIOR_PALM = 0.05
PALM_PRIOR_WEIGHT = 5.0
#: Windows (indices into WINDOWS) whose counts are judged against the user's Palm mean.
PALM_WINDOWS = (0, 1)
#: Optional fields whose new values count as novelty, and how many distinct values each keeps.
NOVELTY_KINDS = ("merchant", "country", "channel", "category")
SET_LIMITS = (16, 6, 4, 8)
#: Most recent transactions remembered per user (time and amount) for velocity rules.
RECENT_TRANSACTIONS = 12
#: Recent transactions older than this (before the user's newest) are forgotten, so an
#: ordinary user keeps only a day's handful; the longest window a velocity rule may use.
RECENT_WINDOW_SECONDS = 24 * 3600.0
#: A run of suspicious transactions this long, spanning this much event time, with no
#: ordinary one between, is the user's new habit and is learned (see ``update``). Fraud comes
#: in bursts of minutes to hours, or mixed with the owner's own spending; a user who only
#: ever looks suspicious for a day has changed. Three days (until 2026-12-03) left an owner
#: whose history began with a card-testing burst alerted on all 19 payments of their first
#: two days (our stream, seed 11). With one day, of five streams with and without labels only
#: the handbook's without labels caught fewer frauds (one); seed 11 and Sparkov lost false alerts.
STREAK_TRANSACTIONS = 5
STREAK_SECONDS = 1 * 86400.0
#: A history whose every payment came within this much event time before the first alert
#: of an episode began with that episode: a card tested (or taken over) as its first
#: activity, its first payments learned before the alerts began. Its habit is forgotten then
#: (``UserHistory.forget_habit``), or the owner's own payments after it look unlike "their"
#: habit and are alerted until the streak rule above learns them: on our stream, seeds 10, 11
#: and 12, one such user each gave 15, 14 and 16 of the 21, 26 and 25 false alerts. Card tests
#: come seconds apart (0.5-2 s there); a new user's payments minutes apart are kept.
BURST_BEGUN_SECONDS = 120.0
#: Default time constant of the short ``velocity`` counter, seconds.
VELOCITY_TAU = 30.0
#: z-scores are clipped to +-this before the Student-t correction.
Z_CLIP = 30.0
DAY = 86400.0
#: The spree CUSUM (see the module docstring): payments add their ``z`` beyond this slack, and
#: the sum decays with this time constant. A slack of 1 and three days: an episode of three
#: payments at z ~2 within a day or two sums to ~3 (the deviation rule's default spree line),
#: an ordinary tail payment now and then does not. Counted from the user's
#: SPREE_MIN_HISTORY-th transaction, as the deviation rule's amounts are by default.
SPREE_SLACK = 1.0
SPREE_TAU = 3 * DAY
#: What one payment adds at most: a spree takes at least two, a single large amount is the
#: amount rules' to judge.
SPREE_STEP_CAP = 2.0
SPREE_MIN_HISTORY = 5
#: How far above the user's own ``z`` a payment's spree step may be lifted by the rarity of its
#: amount in its category (the normal quantile of the share of the category's payments at its
#: amount or above: 2 for the top 2%). A user's amounts mix what they buy, so a 300 grocery bill
#: at night is z ~1.5 against their own mix though only 2% of grocery bills reach it; several
#: such in a few days are how card fraud spends in the Sparkov- and BankSim-like streams. The
#: lift is bounded because a user who buys rarely-priced things in a few categories (a persona
#: stream's big spenders) does it every week. Measured offline without labels, no lift -> 0.5:
#: Sparkov-like recall 0.424 / 0.295 / 0.362 -> 0.459 / 0.389 / 0.412 (seeds 42 / 1 / 7) at
#: equal or better precision, personas precision 0.892 -> 0.876; streams without a category
#: unchanged (docs/detection.md has the rest).
SPREE_CATEGORY_LIFT = 0.5
#: How long a user must have been seen before their day's spending (``spend_1d``) is judged
#: against their usual day: one day, the window's length. Before that the usual rate is
#: mostly its prior of one payment a day, so a user who pays every minute of their first hour
#: looks as if they spent dozens of days' worth.
SPREE_MIN_AGE = DAY
#: An amount this close (log scale) to the user's last alerted one, after this long without an
#: alert, is a recurring payment (see the module docstring). Measured on the Sparkov-like
#: stream without labels: 541 false alerts of 129 card holders, mostly a travel payment of ~500
#: every ~12 days, alerted each time; precision 0.125 -> 0.275 at the same recall. Three days
#: instead of seven lost a tenth of the handbook's compromised customers (their chains of x5
#: amounts pause for days), a tolerance of 0.4 more of them and some Sparkov frauds.
RECURRING_GAP_SECONDS = 7 * DAY
RECURRING_TOLERANCE = 0.25
#: Default gap without alerts after which the user's next alert begins a new episode (the
#: deviation rule's alert memory: ``FRAUDSTREAM_DEVIATION_ALERT_MEMORY_DAYS``).
ALERT_MEMORY = 14 * DAY
TWO_PI = 2.0 * math.pi
_NORMAL = NormalDist()

#: Version byte of the encoding; a blob with another one is not read (but the four before).
#: 5: the recent transactions (:data:`RECENT_TRANSACTIONS`) follow the remembered values;
#: 6: the suspicious streak (its start and length) ends the head;
#: 7: then the log amount of the user's newest alert; 8: then the start of its episode;
#: 9: then the spree CUSUM; 10: the category habits (their number, then per category its token,
#: count and mean log amount) follow the recent transactions; 11: the newest suspicious
#: transaction's time ends the head; 12: each recent transaction's id token follows their
#: times and amounts.
VERSION = 12
#: The previous encodings: without the recent transactions' ids (a copy of one of them is not
#: recognised), also without the newest suspicious transaction (its alerts stand for it),
#: also without the category habits (none known yet), also without the
#: spree (it starts at 0), also without the episode's start (the newest alert stands for it),
#: also without the newest alert's amount, also without the streak (it starts empty), and also
#: without recent transactions (they start empty too). All still read.
VERSION_11 = 11
VERSION_10 = 10
VERSION_9 = 9
VERSION_8 = 8
VERSION_7 = 7
VERSION_6 = 6
VERSION_5 = 5
VERSION_4 = 4
#: version, last partition, last offset, n, suspicious, t_first, t_last, 28 floats, places,
#: the four set sizes, then (version 5) the number of recent transactions, then (version 6)
#: the streak's start and length, then (version 7) the newest alert's log amount, then
#: (version 8) the start of the alert episode, then (version 9) the spree CUSUM, then
#: (version 11) the newest suspicious transaction's time
_HEAD = struct.Struct("<BiqII2d28dI5BdIdddd")
_HEAD_10 = struct.Struct("<BiqII2d28dI5BdIddd")
_HEAD_8 = struct.Struct("<BiqII2d28dI5BdIdd")
_HEAD_7 = struct.Struct("<BiqII2d28dI5BdId")
_HEAD_6 = struct.Struct("<BiqII2d28dI5BdI")
_HEAD_5 = struct.Struct("<BiqII2d28dI5B")
_HEAD_4 = struct.Struct("<BiqII2d28dI4B")
_HEADS = {
    VERSION: _HEAD,
    VERSION_11: _HEAD,
    VERSION_10: _HEAD_10,
    VERSION_9: _HEAD_10,
    VERSION_8: _HEAD_8,
    VERSION_7: _HEAD_7,
    VERSION_6: _HEAD_6,
    VERSION_5: _HEAD_5,
    VERSION_4: _HEAD_4,
}

BEHAVIOUR_FEATURES = (
    "history",
    "z_habit",
    "recurring",
    "z_raw",
    "z_log",
    "z",
    "w_raw",
    "log_ratio",
    "log_amount",
    *(f"{kind}_{name}" for name in WINDOW_NAMES for kind in ("burst", "spend")),
    *(f"rate_z_{WINDOW_NAMES[j]}" for j in PALM_WINDOWS),
    "since_alert",
    "velocity",
    "gap",
    "gap_rel",
    "tod_dev",
    *(f"{kind}_{name}" for name in NOVELTY_KINDS for kind in ("new", "surprise")),
    "distance",
)
#: Features the detector computes beside :data:`BEHAVIOUR_FEATURES` and keeps out of the
#: classifier's input (which sees them through the rule levels): the spree CUSUM and the
#: payment's ``z`` as the spree counts it (:meth:`BehaviourFeatures.lift_spree`).
SEQUENCE_FEATURES = ("spree", "spree_z")
#: Whether the amount is ordinary for the user in its category (see the module docstring): a
#: gate the detector folds into ``category_common``, not a classifier input.
CATEGORY_HABIT_FEATURES = ("category_usual",)
_WINDOW_KEYS = tuple(
    (tau, f"burst_{name}", f"spend_{name}") for tau, name in zip(WINDOWS, WINDOW_NAMES, strict=True)
)
_RATE_KEYS = tuple(
    (k, j, WINDOWS[j], f"rate_z_{WINDOW_NAMES[j]}") for k, j in enumerate(PALM_WINDOWS)
)
_NOVELTY_KEYS = tuple(
    (i, f"new_{kind}", f"surprise_{kind}") for i, kind in enumerate(NOVELTY_KINDS)
)
#: What Half-Space Trees see: each is 0 for ordinary traffic, because the trees only resolve
#: regions holding more than a tenth of their window and would hide rare values among spread-out
#: normal ones. Amounts far above habit (log scale), far below it (only as far as the user's
#: amounts are shown to be log-normal: a normal spender's small amount is ordinary), a quick
#: repeat, a new country.
HST_FEATURES = ("habit_up", "habit_down_w", "velocity", "new_country")
#: z-scores up to this are ordinary variation and map to 0 on the habit-excess inputs.
HABIT_EXCESS_START = 2.5
#: Beyond HABIT_EXCESS_START the excess is squashed with tanh(excess / HABIT_EXCESS_SCALE).
HABIT_EXCESS_SCALE = 2.0
#: Decayed count of a user's earlier transactions that maps to 1.0 on the ``velocity`` input.
VELOCITY_CAP = 2.0


def _category_usual(h: UserHistory, category: str | None, log_amount: float) -> float:
    """1.0 when the amount is within :data:`CATEGORY_HABIT_Z` of the user's log spreads of
    their mean in its category, from :data:`CATEGORY_HABIT_MIN` payments there; else 0.0.

    >>> h = UserHistory(n=20, var_log=0.25, category_tokens=[token("travel")],
    ...                 category_counts=[3], category_means=[math.log1p(500.0)])
    >>> _category_usual(h, "travel", math.log1p(600.0)), _category_usual(h, "travel", 8.0)
    (1.0, 0.0)
    >>> _category_usual(h, "grocery", math.log1p(600.0))  # no habit there
    0.0
    """
    if category is None or not h.category_tokens:
        return 0.0
    t = token(category)
    known = h.category_tokens
    if t not in known:
        return 0.0
    i = known.index(t)
    if h.category_counts[i] < CATEGORY_HABIT_MIN:
        return 0.0
    usual = log_amount - h.category_means[i] < CATEGORY_HABIT_Z * math.sqrt(h.log_variance())
    return 1.0 if usual else 0.0


def _learn_category(h: UserHistory, t: int, log_amount: float) -> None:
    """Count a learned payment in category ``t``'s habit, which becomes the newest one."""
    known, counts, means = h.category_tokens, h.category_counts, h.category_means
    if t in known:
        i = known.index(t)
        del known[i]
        count, mean = counts.pop(i), means.pop(i)
    else:
        count, mean = 0, 0.0
    count = min(count + 1, 65_535)
    mean += (log_amount - mean) / min(count, CATEGORY_HABIT_MEMORY)
    known.append(t)
    counts.append(count)
    means.append(mean)
    del known[:-CATEGORY_HABITS], counts[:-CATEGORY_HABITS], means[:-CATEGORY_HABITS]


def _spree_after(h: UserHistory, gap: float, z: float) -> float:
    """The spree CUSUM once a payment at ``z`` is counted, ``gap`` seconds after the user's last.

    >>> round(_spree_after(UserHistory(n=10, spree=1.0), SPREE_TAU, 2.5), 3)
    1.868
    """
    spree = h.spree * math.exp(-gap / SPREE_TAU)
    if h.n >= SPREE_MIN_HISTORY:
        spree = max(0.0, spree + min(z - SPREE_SLACK, SPREE_STEP_CAP))
    return spree


def token(value: object) -> int:
    """32-bit hash a categorical value is remembered by (stable across processes, unlike hash)."""
    return zlib.crc32(str(value).encode())


#: What :meth:`UserHistory.forget_habit` resets: what learned payments teach.
_HABIT_FIELDS = (
    "n", "mu_raw", "var_raw", "mu_log", "var_log", "llr", "tod_c", "tod_s", "p_new", "lat",
    "lon", "dist_mean", "places", "palm", "sets", "category_tokens", "category_counts",
    "category_means",
)  # fmt: skip


@dataclass(slots=True)
class UserHistory:
    """Everything kept per user; :meth:`encode` is 315-915 bytes.

    ``last_partition``/``last_offset`` guard against re-applying a redelivered message
    (at-least-once input). ``recent_times``/``recent_amounts`` are the user's latest
    transactions (suspicious and alerted ones too), oldest first, at most
    :data:`RECENT_TRANSACTIONS` within :data:`RECENT_WINDOW_SECONDS` of the newest: what
    velocity rules count; ``recent_ids`` their transaction ids' tokens, which tell a copy of
    one of them sent again (a producer's retry) from a new payment.
    """

    n: int = 0  # transactions in the amount statistics (suspicious ones excluded)
    suspicious: int = 0
    t_first: float = 0.0
    t_last: float = 0.0
    mu_raw: float = 0.0
    var_raw: float = 0.0
    mu_log: float = 0.0
    var_log: float = 0.0
    llr: float = 0.0  # decayed sum: > 0 means the raw (normal) scale fits this user better
    counts: list[float] = field(default_factory=lambda: [0.0] * len(WINDOWS))
    sums: list[float] = field(default_factory=lambda: [0.0] * len(WINDOWS))
    tod_c: float = 0.0
    tod_s: float = 0.0
    p_new: list[float] = field(default_factory=lambda: [0.5] * len(NOVELTY_KINDS))
    lat: float = 0.0
    lon: float = 0.0
    dist_mean: float = 0.0
    places: int = 0  # transactions with coordinates folded into the centre
    palm: list[float] = field(default_factory=lambda: [PRIOR_PALM] * len(PALM_WINDOWS))
    velocity: float = 0.0  # decayed count of *all* earlier transactions
    t_alert: float = 0.0  # event time of the user's newest alert (0: never)
    sets: list[list[int]] = field(default_factory=lambda: [[] for _ in NOVELTY_KINDS])
    last_partition: int = -1
    last_offset: int = -1
    recent_times: list[float] = field(default_factory=list)  # epoch seconds, ms precision
    recent_amounts: list[float] = field(default_factory=list)  # rounded to cents
    recent_ids: list[int] = field(default_factory=list)  # token() of each one's id (0: unknown)
    t_streak: float = 0.0  # event time of the first of the current run of suspicious ones
    streak: int = 0  # suspicious transactions since the user's last ordinary one
    alert_log_amount: float = 0.0  # log1p of the amount of the user's newest alert
    t_episode: float = 0.0  # event time of the first alert of the newest episode (0: never)
    spree: float = 0.0  # the spree CUSUM as of t_last (see the module docstring)
    t_suspect: float = 0.0  # event time of the newest suspicious (unlearned) one (0: none yet)
    #: the categories of the user's learned payments, least recent first (at most
    #: CATEGORY_HABITS), the payments there (capped at 65,535) and their decayed mean log1p
    category_tokens: list[int] = field(default_factory=list)
    category_counts: list[int] = field(default_factory=list)
    category_means: list[float] = field(default_factory=list)

    def forget_habit(self) -> None:
        """Forget what the user's learned payments taught (amounts, hours, places, novelty,
        categories), keeping the clock, windows, velocity, recent payments and alert episode:
        for a history that began with the episode now alerted (see ``update``).

        >>> h = UserHistory(n=2, mu_log=0.7, sets=[[5], [], [], []], velocity=3.0)
        >>> h.forget_habit()
        >>> h.n, h.mu_log, h.sets[0], h.velocity
        (0, 0.0, [], 3.0)
        """
        fresh = UserHistory()
        for name in _HABIT_FIELDS:
            setattr(self, name, getattr(fresh, name))

    def predictive_spreads(self) -> tuple[float, float]:
        """Spreads of the next amount on the raw and the log scale (the user has amounts):
        shrunk towards the prior while history is short, widened for the mean's uncertainty.
        The z-scores and the normal-vs-log-normal evidence both use them."""
        n = self.n
        widen = 1.0 + 1.0 / n
        prior_raw = (PRIOR_CV_RAW * abs(self.mu_raw)) ** 2 + 1e-6
        var_r = (n * self.var_raw + PRIOR_WEIGHT * prior_raw) / (n + PRIOR_WEIGHT)
        return math.sqrt(var_r * widen), math.sqrt(self.log_variance() * widen)

    def log_variance(self) -> float:
        """Variance of the user's log amounts, shrunk towards the prior while history is short
        (before the predictive widening)."""
        return (self.n * self.var_log + PRIOR_WEIGHT * PRIOR_SD_LOG**2) / (self.n + PRIOR_WEIGHT)

    def recurs(self, event_time: float, log_amount: float) -> bool:
        """Whether an amount (``log1p``) repeats the user's newest alerted one after
        :data:`RECURRING_GAP_SECONDS` without an alert: a payment the user makes now and then.

        >>> history = UserHistory(t_alert=1_000.0, alert_log_amount=math.log1p(500.0))
        >>> month = 1_000.0 + 30 * DAY
        >>> history.recurs(month, math.log1p(540.0)), history.recurs(month, math.log1p(900.0))
        (True, False)
        >>> history.recurs(1_000.0 + DAY, math.log1p(500.0))  # the next day: a spree, not a habit
        False
        """
        return (
            self.t_alert > 0.0
            and event_time - self.t_alert >= RECURRING_GAP_SECONDS
            and abs(log_amount - self.alert_log_amount) <= RECURRING_TOLERANCE
        )

    def locates(self, tx: Transaction) -> bool:
        """Whether ``tx``'s distance from the user's usual place can be judged: it has
        coordinates and the user at least two known places."""
        return tx.latitude is not None and tx.longitude is not None and self.places >= 2

    @property
    def seen(self) -> bool:
        """True once any transaction of the user was folded in (suspicious ones too)."""
        return self.n > 0 or self.suspicious > 0

    def has_applied(self, partition: int, offset: int) -> bool:
        """True when this source position was already folded into the history."""
        return partition == self.last_partition and offset <= self.last_offset

    def mark_applied(self, partition: int, offset: int) -> None:
        """Count this source position as handled without folding anything in (a skipped copy).

        >>> history = UserHistory()
        >>> history.mark_applied(3, 41)
        >>> history.has_applied(3, 41), history.has_applied(3, 42), history.n
        (True, False, 0)
        """
        self.last_partition, self.last_offset = partition, offset

    def recent_activity(self, event_time: float, window_seconds: float) -> tuple[int, float]:
        """Count and total amount of the remembered transactions in ``[t - window, t]``.

        For a payment older than the newest (it arrived late), windows of that length that
        hold it may also reach past it: the largest count and total among them, as the
        window that ends at the newest payment of the burst would have counted in order.

        >>> history = UserHistory(recent_times=[0.0, 50.0, 90.0], recent_amounts=[5.0, 7.0, 9.0])
        >>> history.recent_activity(100.0, 60.0), history.recent_activity(45.0, 60.0)
        ((2, 16.0), (2, 16.0))
        """
        times, amounts = self.recent_times, self.recent_amounts
        if times and times[-1] > event_time:
            return self._activity_around(event_time, window_seconds)
        start = event_time - window_seconds
        count, total = 0, 0.0
        for moment, amount in zip(times, amounts, strict=False):
            if start <= moment <= event_time:
                count += 1
                total += amount
        return count, total

    def _activity_around(self, event_time: float, window_seconds: float) -> tuple[int, float]:
        """Largest count and total of remembered transactions in a window of
        ``window_seconds`` that holds ``event_time``."""
        best_count, best_total = 0, 0.0
        times, amounts = self.recent_times, self.recent_amounts
        for i, begin in enumerate(times):  # each window starts at a payment (or at t)
            if begin > event_time or begin < event_time - window_seconds:
                continue
            end = begin + window_seconds
            inside = [a for t, a in zip(times[i:], amounts[i:], strict=False) if t <= end]
            best_count = max(best_count, len(inside))
            best_total = max(best_total, sum(inside))
        start = [
            a
            for t, a in zip(times, amounts, strict=False)
            if event_time <= t <= event_time + window_seconds
        ]
        return max(best_count, len(start)), max(best_total, sum(start))

    def remember_recent(self, event_time: float, amount: float, id_token: int = 0) -> None:
        """Add one transaction to the recent ones (in time order), dropping beyond the bounds."""
        times, amounts, ids = self.recent_times, self.recent_amounts, self._recent_ids()
        self.recent_ids = ids
        moment = round(event_time, 3)
        at = len(times) if not times or moment >= times[-1] else bisect.bisect_right(times, moment)
        times.insert(at, moment)
        amounts.insert(at, round(amount, 2))
        ids.insert(at, id_token)
        drop = max(
            bisect.bisect_left(times, times[-1] - RECENT_WINDOW_SECONDS),
            len(times) - RECENT_TRANSACTIONS,
        )
        del times[:drop], amounts[:drop], ids[:drop]

    def _recent_ids(self) -> list[int]:
        """The recent ids, one per recent transaction (unknown ones for a history built
        without them)."""
        ids = self.recent_ids
        return ids if len(ids) == len(self.recent_times) else [0] * len(self.recent_times)

    def has_recent(self, transaction_id: str) -> bool:
        """Whether a transaction of this id is among the recent ones: a copy of it, sent again.

        >>> history = UserHistory()
        >>> history.remember_recent(1_000.0, 25.0, token("tx-1"))
        >>> history.has_recent("tx-1"), history.has_recent("tx-2")
        (True, False)
        """
        return token(transaction_id) in self.recent_ids

    def encode(self) -> bytes:
        """Compact binary form: a 314-byte head, 4 bytes per remembered value, 20 per recent one,
        then the category habits: 1 byte and 14 per category."""
        sets = self.sets
        tokens = [t for s in sets for t in s]
        recent = len(self.recent_times)
        habits = len(self.category_tokens)
        return _encoding(len(tokens), recent, habits).pack(
            VERSION, self.last_partition, self.last_offset, self.n, self.suspicious,
            self.t_first, self.t_last,
            self.mu_raw, self.var_raw, self.mu_log, self.var_log, self.llr,
            *self.counts, *self.sums, self.tod_c, self.tod_s, *self.p_new,
            self.lat, self.lon, self.dist_mean, *self.palm, self.velocity, self.t_alert,
            self.places, *(len(s) for s in sets), recent,
            self.t_streak, self.streak, self.alert_log_amount, self.t_episode, self.spree,
            self.t_suspect,
            *tokens, *self.recent_times, *self.recent_amounts, *self._recent_ids(),
            habits, *self.category_tokens, *self.category_counts, *self.category_means,
        )  # fmt: skip

    @classmethod
    def decode(cls, blob: bytes | None) -> UserHistory:
        """Inverse of :meth:`encode`; ``None`` (a new user) or a pre-v4 JSON profile: empty.

        A version 5 blob is read with no streak, a version 4 one also with no recent
        transactions. Raises ``ValueError`` for bytes that are none of these (a corrupt record
        must not pass).
        """
        if not blob or blob[:1] == b"{":  # the JSON profiles of before: start afresh
            return cls()
        head = _HEADS.get(blob[0])
        if head is None:
            raise ValueError(f"user history of unknown version {blob[0]}")
        try:
            v = head.unpack_from(blob)
            sizes = v[36:40]
            recent = v[40] if blob[0] != VERSION_4 else 0
            t_streak, streak = v[41:43] if blob[0] >= VERSION_6 else (0.0, 0)
            alert_log_amount = v[43] if blob[0] >= VERSION_7 else 0.0
            t_episode = v[44] if blob[0] >= VERSION_8 else 0.0
            spree = v[45] if blob[0] >= VERSION_9 else 0.0
            t_suspect = v[46] if blob[0] >= VERSION_11 else 0.0
            tokens = struct.unpack_from(f"<{sum(sizes)}I", blob, head.size)
            at = head.size + 4 * sum(sizes)
            moments = struct.unpack_from(f"<{2 * recent}d", blob, at)
            at += 16 * recent
            ids: tuple[int, ...] = (0,) * recent  # before 12: not known
            if blob[0] >= VERSION:
                ids = struct.unpack_from(f"<{recent}I", blob, at)
                at += 4 * recent
            habits, habit = 0, ()
            if blob[0] >= VERSION_10:  # before: no habit known yet
                if at >= len(blob):
                    raise struct.error("no category habits")
                habits = blob[at]
                habit = struct.unpack_from(f"<{habits}I{habits}H{habits}d", blob, at + 1)
        except struct.error as exc:
            raise ValueError(f"truncated user history: {exc}") from exc
        f = v[7:35]
        sets, pos = [], 0
        for size in sizes:
            sets.append(list(tokens[pos : pos + size]))
            pos += size
        return cls(
            last_partition=v[1], last_offset=v[2], n=v[3], suspicious=v[4], t_first=v[5],
            t_last=v[6], mu_raw=f[0], var_raw=f[1], mu_log=f[2], var_log=f[3], llr=f[4],
            counts=list(f[5:10]), sums=list(f[10:15]), tod_c=f[15], tod_s=f[16],
            p_new=list(f[17:21]), lat=f[21], lon=f[22], dist_mean=f[23], palm=list(f[24:26]),
            velocity=f[26], t_alert=f[27], places=v[35], sets=sets,
            recent_times=list(moments[:recent]), recent_amounts=list(moments[recent:]),
            recent_ids=list(ids), t_streak=t_streak, streak=streak,
            alert_log_amount=alert_log_amount, t_episode=t_episode, spree=spree,
            t_suspect=t_suspect,
            category_tokens=list(habit[:habits]), category_counts=list(habit[habits:2 * habits]),
            category_means=list(habit[2 * habits:]),
        )  # fmt: skip


#: One compiled layout per shape (remembered values, recent transactions, category habits):
#: a history is encoded once per transaction, and one pack is half the cost of five. At most
#: 35 x 13 x 17 shapes (:data:`SET_LIMITS`, :data:`RECENT_TRANSACTIONS`, :data:`CATEGORY_HABITS`).
_ENCODINGS: dict[tuple[int, int, int], struct.Struct] = {}


def _encoding(tokens: int, recent: int, habits: int) -> struct.Struct:
    """The whole encoding of a history of this shape as one struct (:meth:`UserHistory.encode`).

    >>> _encoding(2, 1, 0).size == _HEAD.size + 2 * 4 + 1 * 20 + 1
    True
    """
    shape = (tokens, recent, habits)
    layout = _ENCODINGS.get(shape)
    if layout is None:
        tail = f"{tokens}I{2 * recent}d{recent}IB{habits}I{habits}H{habits}d"
        layout = _ENCODINGS[shape] = struct.Struct(_HEAD.format + tail)
    return layout


def _novelty_values(tx: Transaction) -> tuple[str | None, ...]:
    return (tx.merchant, tx.country, tx.channel, tx.category)


@dataclass(slots=True)
class ScaleEvidence:
    """What the whole stream says of the raw against the log scale: the running mean of every
    learned amount's normal-vs-log-normal log-likelihood ratio (clipped as a user's is), over
    about the last :data:`POPULATION_MEMORY` amounts; a user's own evidence starts from
    :attr:`prior`. Learned by the detector, kept in its checkpoint.

    The prior moves only when its owner calls :meth:`refresh` (the worker: after each batch),
    so a batch is decided exactly as the same events one by one.

    >>> evidence = ScaleEvidence()
    >>> for term in (0.2, 0.1, 0.15):
    ...     evidence.observe(term)
    >>> round(evidence.mean, 3), evidence.count, evidence.prior
    (0.15, 3, 0.0)
    >>> evidence.count = 5_000
    >>> evidence.refresh()
    >>> round(evidence.prior, 2)
    7.5

    ``weight=0`` leaves every user to their own evidence (as the tests of one user's do).
    """

    mean: float = 0.0
    count: int = 0
    #: How many of a user's amounts the stream's evidence is worth.
    weight: float = SCALE_PRIOR_WEIGHT
    #: The log-odds a user's evidence starts from, as of the last :meth:`refresh`.
    prior: float = 0.0

    def observe(self, term: float) -> None:
        """Take one learned amount's evidence in."""
        self.count += 1
        self.mean += (term - self.mean) / min(self.count, POPULATION_MEMORY)

    def to_dict(self) -> dict[str, float]:
        """The figures ``/stats`` and ``evaluate`` report (positive: the stream's users spend
        like normal spenders, negative: log-normal ones).

        >>> ScaleEvidence(mean=-0.17, count=20_000, prior=-8.5).to_dict()
        {'meanPerAmount': -0.17, 'amounts': 20000, 'prior': -8.5}
        """
        return {
            "meanPerAmount": round(self.mean, 4),
            "amounts": self.count,
            "prior": round(self.prior, 3),
        }

    def refresh(self) -> None:
        """Set :attr:`prior` from the evidence so far: none while the stream is unknown, in
        full from :data:`POPULATION_MIN` learned amounts on (a handful of amounts, maybe one
        user's, is no stream's signature)."""
        self.prior = self.weight * self.mean * min(1.0, self.count / POPULATION_MIN)


@dataclass(frozen=True, slots=True)
class BehaviourFeatures:
    """Computes a transaction's features against its user's history, then folds it in.

    >>> from datetime import datetime, timezone
    >>> model, history = BehaviourFeatures(), UserHistory()
    >>> for day, amount in enumerate([20.0, 25.0, 18.0, 22.0, 21.0]):
    ...     when = datetime(2024, 1, 1 + day, 12, tzinfo=timezone.utc)
    ...     tx = Transaction(f"t{day}", "u1", amount, when)
    ...     model.update(history, tx, 0, day, suspicious=False)
    >>> spike = Transaction("t9", "u1", 400.0, datetime(2024, 1, 6, 12, tzinfo=timezone.utc))
    >>> features = model.features(history, spike)
    >>> features["z_habit"] > 4.5, len(history.encode()) < 1024
    (True, True)
    """

    velocity_tau: float = VELOCITY_TAU
    alert_memory: float = ALERT_MEMORY
    #: The stream's own scale evidence, learned from every user's learned amounts.
    scale: ScaleEvidence = field(default_factory=ScaleEvidence)
    #: The step the stream's clock ticks in: the least gap read between two payments.
    clock: ClockStep = field(default_factory=ClockStep)

    def gap(self, h: UserHistory, event_time: float) -> float:
        """Seconds between a payment and the user's nearest one (0 for a first payment), at
        least the clock's :attr:`~fraudstream.core.clock.ClockStep.min_gap`.

        For a payment that arrives after a newer one (two terminals, a retried send), the
        nearest of the user's recent payments on either side of it: read as simultaneous with
        the newest, as it was, a late payment looked like a burst.

        >>> model = BehaviourFeatures()
        >>> h = UserHistory(n=3, t_last=1_000.0, recent_times=[100.0, 500.0, 1_000.0])
        >>> model.gap(h, 1_600.0), model.gap(h, 600.0), model.gap(UserHistory(), 400.0)
        (600.0, 100.0, 0.0)
        """
        if not h.seen:
            return 0.0
        gap = event_time - h.t_last
        if gap < 0.0:
            gap = -gap
            times = h.recent_times
            at = bisect.bisect_left(times, event_time)
            for i in (at - 1, at):
                if 0 <= i < len(times):
                    gap = min(gap, abs(event_time - times[i]))
        return max(self.clock.min_gap, gap)

    def features(self, h: UserHistory, tx: Transaction) -> dict[str, float]:
        """Every feature in :data:`BEHAVIOUR_FEATURES`, :data:`SEQUENCE_FEATURES` and
        :data:`CATEGORY_HABIT_FEATURES` of ``tx``,
        against the history before it (``spree`` includes ``tx`` itself)."""
        x = tx.amount
        ts = tx.epoch_seconds
        lx = math.log1p(max(x, 0.0))
        out: dict[str, float] = {}
        n = h.n
        out["history"] = math.log1p(n)
        if n == 0:
            z_raw = z_log = z = 0.0
            w = 0.5
            ratio = 0.0
            out["z_habit"] = 0.0
        else:
            widen = 1.0 + 1.0 / n
            sd_r, sd_l = h.predictive_spreads()
            dof = min(n, MEMORY) + PRIOR_WEIGHT - 1.0
            z_raw = _t_to_z(_clip((x - h.mu_raw) / sd_r, Z_CLIP), dof)
            z_log = _t_to_z(_clip((lx - h.mu_log) / sd_l, Z_CLIP), dof)
            w = 1.0 / (1.0 + math.exp(-_clip(h.llr + self.scale.prior, 30.0)))
            # undecided (w ~ 0.5): the conservative median(z_raw, z_log, 0); decided: the
            # scale this user's amounts follow
            z_cons = sorted((z_raw, z_log, 0.0))[1]
            z_pref = z_raw if w >= 0.5 else z_log
            z = z_cons + abs(2.0 * w - 1.0) * (z_pref - z_cons)
            ratio = lx - h.mu_log
            var_h = (n * h.var_log + HABIT_PRIOR_WEIGHT * HABIT_PRIOR_SD_LOG**2) / (
                n - 1 + HABIT_PRIOR_WEIGHT
            )
            out["z_habit"] = (lx - h.mu_log) / math.sqrt(var_h * widen)
        if h.recurs(ts, lx):
            out["recurring"] = 1.0
            z_raw, z_log, z = (min(v, HABIT_EXCESS_START) for v in (z_raw, z_log, z))
            out["z_habit"] = min(out["z_habit"], HABIT_EXCESS_START)
        else:
            out["recurring"] = 0.0
        out["z_raw"] = z_raw
        out["z_log"] = z_log
        out["z"] = z
        out["w_raw"] = w
        out["log_ratio"] = ratio
        out["log_amount"] = lx

        seen = h.seen
        gap = self.gap(h, ts)
        spree = _spree_after(h, gap, z)
        age = max(0.0, ts - h.t_first) if seen else 0.0
        exp = math.exp
        # each window's decay over the gap and share of it observed, once: the 30-day one also
        # gives the user's rate, and the short ones the Palm counts
        decays = [exp(-gap / tau) for tau in WINDOWS]
        filled = [1.0 - exp(-age / tau) for tau in WINDOWS]
        counts, sums = h.counts, h.sums
        observed = WINDOWS[-1] * filled[-1]
        rate = (counts[-1] * decays[-1] + PRIOR_RATE_PER_DAY) / (observed + DAY)
        typical = max(math.expm1(h.mu_log), 0.01) if n else max(x, 0.01)
        log = math.log
        for i, (tau, burst_key, spend_key) in enumerate(_WINDOW_KEYS):
            decay = decays[i]
            count = counts[i] * decay
            total = sums[i] * decay
            expected = rate * tau * filled[i]  # what the user's rate predicts
            out[burst_key] = log((count + 1.0) / (expected + 1.0))
            out[spend_key] = log((total + x + typical) / ((expected + 1.0) * typical + typical))
        for k, j, _, rate_key in _RATE_KEYS:
            count = counts[j] * decays[j] if seen else 0.0
            out[rate_key] = _poisson_z(count, h.palm[k])
        since = max(0.0, ts - h.t_alert) / DAY if h.t_alert else 365.0
        out["since_alert"] = math.log1p(since)
        out["velocity"] = h.velocity * math.exp(-gap / self.velocity_tau) if seen else 0.0
        out["gap"] = math.log1p(gap) if seen else math.log1p(30 * DAY)
        out["gap_rel"] = math.log(gap * rate + 0.01) if seen else 0.0

        angle = TWO_PI * (ts % DAY) / DAY
        r = math.hypot(h.tod_c, h.tod_s)
        cos_dev = (math.cos(angle) * h.tod_c + math.sin(angle) * h.tod_s) / r if r > 1e-9 else 1.0
        out["tod_dev"] = r * (1.0 - cos_dev) / 2.0

        for (i, new_key, surprise_key), value in zip(
            _NOVELTY_KEYS, _novelty_values(tx), strict=True
        ):
            known = h.sets[i]
            new = 0.0 if value is None or not known or token(value) in known else 1.0
            out[new_key] = new
            out[surprise_key] = new * (1.0 - h.p_new[i])

        if h.locates(tx):
            assert tx.latitude is not None and tx.longitude is not None  # what locates checks
            d = math.hypot(tx.latitude - h.lat, tx.longitude - h.lon)
            out["distance"] = math.log1p(min(d / (h.dist_mean + 1e-9), 1e3))
        else:
            out["distance"] = 0.0
        out["spree"] = spree
        out["spree_z"] = z
        out["category_usual"] = _category_usual(h, tx.category, lx)
        return out

    def lift_spree(
        self, h: UserHistory, tx: Transaction, features: dict[str, float], category_z: float
    ) -> None:
        """Count the payment in the spree at ``category_z`` (how rare its amount is in its
        category, in normal units) where that is above the user's ``z``, by at most
        :data:`SPREE_CATEGORY_LIFT`: ``spree_z`` and ``spree`` of :meth:`features`, in place.

        >>> from datetime import datetime, timezone
        >>> features = {"z": 1.5, "spree_z": 1.5, "spree": 0.5}
        >>> tx = Transaction("t", "u", 300.0, datetime.fromtimestamp(0, timezone.utc))
        >>> BehaviourFeatures().lift_spree(UserHistory(n=10), tx, features, 2.05)
        >>> features["spree_z"], features["spree"]
        (2.0, 1.0)
        """
        z = features["z"]
        lifted = min(category_z, z + SPREE_CATEGORY_LIFT)
        if lifted <= features["spree_z"]:
            return
        features["spree_z"] = lifted
        features["spree"] = _spree_after(h, self.gap(h, tx.epoch_seconds), lifted)

    def update(
        self,
        h: UserHistory,
        tx: Transaction,
        partition: int,
        offset: int,
        suspicious: bool,
        alerted: bool | None = None,
        spree: float | None = None,
        raw_amount: float | None = None,
    ) -> None:
        """Fold ``tx`` in (in place) and remember its source position.

        ``raw_amount`` is the amount in the stream's own unit when ``tx`` is in the detector's
        (:mod:`fraudstream.core.units`): the recent payments the velocity rules sum keep it.

        ``spree`` is the feature of that name :meth:`features` gave ``tx`` (computed again when
        not given); every transaction moves it, alerted ones too, as a CUSUM must.

        A suspicious transaction moves only the clock, the velocity and the windows, so a
        fraudster's spending does not become the user's habit; an alerted one (``alerted``,
        default ``suspicious``) not even the windows, so a flagged burst keeps the counts at the
        level that flagged it without making the next ordinary hour look like a burst. Every
        transaction, suspicious or alerted, joins the recent ones velocity rules count. An alert
        more than ``alert_memory`` after the user's previous one (or their first) begins an
        episode: ``t_episode``, from which the deviation rule's lowered line runs, held from the
        newest suspicious transaction (``t_suspect``) on.

        Unless the user has done nothing else for a while: from the
        :data:`STREAK_TRANSACTIONS`-th suspicious transaction in a row spanning
        :data:`STREAK_SECONDS`, they are learned as ordinary. Otherwise a user whose habit
        really moved (a relocation, or a history begun by a fraudster) would be alerted on
        forever, every alert keeping the history that raised it.
        """
        if alerted is None:
            alerted = suspicious
        if spree is None:
            spree = self.features(h, tx)["spree"]
        h.spree = spree
        h.last_partition, h.last_offset = partition, offset
        x = max(tx.amount, 0.0)
        ts = tx.epoch_seconds
        if not suspicious:
            h.t_streak, h.streak = 0.0, 0
        else:
            if h.streak == 0:
                h.t_streak = ts
            h.streak += 1
            if h.streak >= STREAK_TRANSACTIONS and ts - h.t_streak >= STREAK_SECONDS:
                suspicious = alerted = False  # the habit has moved: learn it (the alert stands)
        first = not h.seen
        if first:
            h.t_first = h.t_last = ts
        gap = self.gap(h, ts)
        late = not first and ts < h.t_last  # the windows stay at the newest payment's time
        decays = [math.exp(-gap / tau) for tau in WINDOWS]
        counts, sums = h.counts, h.sums
        if not suspicious and not first:
            b = 1.0 / min(h.n + PALM_PRIOR_WEIGHT, MEMORY)
            for k, j in enumerate(PALM_WINDOWS):
                # Huber-like: one observation moves the usual level by at most ~1 + 2x itself
                count = min(counts[j] * decays[j], 1.0 + 2.0 * h.palm[k])
                h.palm[k] += b * (count - h.palm[k])
        add = 0.0 if alerted else 1.0
        behind = h.t_last - ts  # > 0 for a late payment
        if late:  # what is left of it at the newest payment, as the windows are
            for i, tau in enumerate(WINDOWS):
                weight = add * math.exp(-behind / tau)
                counts[i] += weight
                sums[i] += weight * x
        else:
            for i, decay in enumerate(decays):
                counts[i] = counts[i] * decay + add
                sums[i] = sums[i] * decay + add * x
        if late:
            h.velocity += math.exp(-behind / self.velocity_tau)
        else:
            h.velocity = (0.0 if first else h.velocity * math.exp(-gap / self.velocity_tau)) + 1.0
        if alerted and ts >= h.t_alert:
            if not h.t_alert or ts - h.t_alert > self.alert_memory:  # first, or after a lull
                h.t_episode = ts
                if h.n and ts - h.t_first <= BURST_BEGUN_SECONDS:
                    h.forget_habit()  # what it learned was the start of this episode
            h.t_alert, h.alert_log_amount = ts, math.log1p(x)
        h.t_last = max(h.t_last, ts)  # out-of-order events never move the clock backwards
        h.remember_recent(
            ts, tx.amount if raw_amount is None else raw_amount, token(tx.transaction_id)
        )
        if suspicious:
            h.suspicious += 1
            h.t_suspect = max(h.t_suspect, ts)
            return
        evidence = self._fold_amount(h, x)
        if evidence is not None:
            self.scale.observe(evidence)
        a = 1.0 / min(h.n, MEMORY)
        angle = TWO_PI * (ts % DAY) / DAY
        h.tod_c += a * (math.cos(angle) - h.tod_c)
        h.tod_s += a * (math.sin(angle) - h.tod_s)
        for i, value in enumerate(_novelty_values(tx)):
            if value is None:
                continue
            known = h.sets[i]
            t = token(value)
            if known:
                h.p_new[i] += a * ((0.0 if t in known else 1.0) - h.p_new[i])
                if t in known:
                    known.remove(t)
            known.append(t)
            del known[: -SET_LIMITS[i]]
        if tx.category is not None:
            _learn_category(h, token(tx.category), math.log1p(x))
        if tx.latitude is not None and tx.longitude is not None:
            h.places += 1
            if h.places == 1:
                h.lat, h.lon, h.dist_mean = tx.latitude, tx.longitude, 0.0
            else:
                b = 1.0 / min(h.places, MEMORY)
                d = math.hypot(tx.latitude - h.lat, tx.longitude - h.lon)
                h.dist_mean += b * (d - h.dist_mean)
                h.lat += b * (tx.latitude - h.lat)
                h.lon += b * (tx.longitude - h.lon)

    @staticmethod
    def _fold_amount(h: UserHistory, x: float) -> float | None:
        """Update both scales' location/spread and the normal-vs-log-normal evidence; returns
        this amount's evidence (None while the user has fewer than three amounts)."""
        lx = math.log1p(x)
        n = h.n
        term = None
        if n >= 3:  # likelihood ratio of the two scales, on the estimates before this amount
            # the predictive spreads the z-scores use: the plug-in ones of three to ten
            # amounts are noisy enough to tip a log-normal spender onto the raw scale
            sd_r, sd_l = h.predictive_spreads()
            zr = (x - h.mu_raw) / sd_r
            zl = (lx - h.mu_log) / sd_l
            # the log-normal density carries the Jacobian 1/(1+x): the ``- lx`` term
            term = (-0.5 * zr * zr - math.log(sd_r)) - (-0.5 * zl * zl - math.log(sd_l) - lx)
            term = LLR_CLIP_RAW if term > LLR_CLIP_RAW else max(term, -LLR_CLIP_LOG)
            h.llr = h.llr * (1.0 - 1.0 / LLR_MEMORY) + term
        h.n = n = n + 1
        a = 1.0 / min(n, MEMORY)
        if n == 1:
            h.mu_raw, h.var_raw, h.mu_log, h.var_log = x, 0.0, lx, 0.0
            return term
        h.mu_raw, h.var_raw = _robust_step(h.mu_raw, h.var_raw, x, a, n, PRIOR_CV_RAW * h.mu_raw)
        h.mu_log, h.var_log = _robust_step(h.mu_log, h.var_log, lx, a, n, PRIOR_SD_LOG)
        return term


def hst_view(features: dict[str, float]) -> dict[str, float]:
    """The Half-Space Trees inputs (:data:`HST_FEATURES`) in [0, 1], all 0 for ordinary traffic.

    >>> hst_view({"z_habit": 0.5, "w_raw": 0.5, "velocity": 0.0, "new_country": 0.0})
    {'habit_up': 0.0, 'habit_down_w': 0.0, 'velocity': 0.0, 'new_country': 0.0}
    """
    zh = features["z_habit"]
    # an amount common in a category new to the user is not a habit excess (core.categories)
    up = 0.0 if features.get("category_common", 0.0) else _habit_excess(zh)
    # 0 while the scale is undecided (w_raw >= 0.5), 1 for a clear log-normal spender: a truncated
    # normal spender (the handbook's) looks half log-normal, and their small amounts are ordinary
    log_normal = max(0.0, 1.0 - 2.0 * features["w_raw"])
    return {
        "habit_up": up,
        "habit_down_w": _habit_excess(-zh) * log_normal,
        "velocity": min(1.0, features["velocity"] / VELOCITY_CAP),
        "new_country": features["new_country"],
    }


#: A Half-Space Trees input up to this is as good as ordinary (each is 0 for ordinary traffic).
ORDINARY_INPUT = 0.05


def habit_excess_alone(view: dict[str, float]) -> bool:
    """Whether an amount above the user's habit is all that is unusual in a trees' view: the
    habit-spike rule's own evidence, which the trees alone would judge against a lower line.

    >>> view = {"habit_up": 0.7, "habit_down_w": 0.0, "velocity": 0.01, "new_country": 0.0}
    >>> habit_excess_alone(view), habit_excess_alone({**view, "velocity": 0.4})
    (True, False)
    """
    return (
        view["habit_up"] > 0.0
        and view["habit_down_w"] <= ORDINARY_INPUT
        and view["velocity"] <= ORDINARY_INPUT
        and view["new_country"] <= ORDINARY_INPUT
    )


def _habit_excess(z: float) -> float:
    """0 for ordinary z-scores, rising towards 1 beyond :data:`HABIT_EXCESS_START`."""
    return math.tanh(max(0.0, z - HABIT_EXCESS_START) / HABIT_EXCESS_SCALE)


def _robust_step(
    mu: float, var: float, x: float, a: float, n: int, prior_sd: float
) -> tuple[float, float]:
    """One step of a running location/spread; residuals Huber-clipped once n > 3.

    With ``a = 1/n`` this is Welford's recursion (population variance); with ``a = 1/MEMORY``
    an exponentially weighted version of it.
    """
    r = x - mu
    if n > 3:
        sd = math.sqrt((n * var + PRIOR_WEIGHT * prior_sd**2) / (n + PRIOR_WEIGHT))
        r = _clip(r, HUBER * sd)
    return mu + a * r, (1.0 - a) * (var + a * r * r)


def _t_to_z(t: float, dof: float) -> float:
    """Normal equivalent of a Student-t value (Wallace 1959): short histories have heavy tails.

    >>> round(_t_to_z(3.0, 1e6), 3), round(_t_to_z(3.0, 4.0), 2)
    (3.0, 2.05)
    """
    z = math.sqrt(dof * math.log1p(t * t / dof)) * (8.0 * dof + 1.0) / (8.0 * dof + 3.0)
    return z if t >= 0 else -z


def _poisson_z(count: float, mean: float) -> float:
    """Normal-equivalent surprise of ``round(count)`` or more events when ``mean`` is usual.

    >>> _poisson_z(0.2, 0.05), round(_poisson_z(3.0, 0.05), 2)
    (0.0, 4.11)
    """
    k = int(count + 0.5)
    if k <= 0:
        return 0.0
    lam = max(mean, 1e-6)
    term = math.exp(-lam)
    cdf = term
    for j in range(1, k):
        term *= lam / j
        cdf += term
    tail = max(1.0 - cdf, 0.0)
    if tail < 1e-12:  # 1 - cdf loses precision: the leading term of the tail instead
        tail = math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
    tail = min(max(tail, 1e-300), 0.5)
    return -_NORMAL.inv_cdf(tail)


def _clip(value: float, bound: float) -> float:
    return -bound if value < -bound else bound if value > bound else value
