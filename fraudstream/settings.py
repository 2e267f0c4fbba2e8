"""Every setting fraudstream reads, in one root with a section per concern.

Each section reads its own ``FRAUDSTREAM_<NAME>`` variables (case-insensitive, the names
users have always set: ``FRAUDSTREAM_BROKER_URL``, ``FRAUDSTREAM_AMOUNT_THRESHOLD``, ...);
the README lists them all with their defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraudstream.core.fields import FieldMapping, TimestampUnit
from fraudstream.core.pending import DEFAULT_LATE_WINDOW_DAYS

if TYPE_CHECKING:
    from fraudstream.core.detector import DetectorConfig

#: Every variable fraudstream reads starts with this.
ENV_PREFIX = "FRAUDSTREAM_"


class _Section(BaseSettings):
    """A group of settings read from ``FRAUDSTREAM_*`` variables with their flat names."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")


class KafkaSettings(_Section):
    """Where the broker is, how to reach it securely, the topics and the consumer group."""

    broker_url: str = Field("kafka://localhost:9092", description="Kafka bootstrap URL(s).")
    app_id: str = Field("fraudstream", description="Faust app id = consumer group id.")
    input_topic: str = Field("transactions-input", description="Topic read for transactions.")
    alerts_topic: str = Field("fraud-alerts", description="Topic alerts are published to.")
    dlq_topic: str = Field("transactions-dlq", description="Dead-letter topic for bad input.")
    labels_topic: str = Field(
        "fraud-labels", description="Topic labels (chargebacks, analysts' verdicts) arrive on."
    )
    decisions_topic: str = Field(
        "", description="Topic every decision (risk score and parts) goes to; empty = off."
    )
    rules_topic: str = Field(
        "fraudstream-rules",
        description="Compacted control topic of rule definitions (key = rule id).",
    )
    shadow_topic: str = Field(
        "fraud-alerts-shadow", description="Topic shadow rules' hits are published to."
    )
    partitions: int = Field(
        4, ge=1, description="Partitions of the input topic; profile tables must match it."
    )
    declare_topics: bool = Field(
        True,
        description="Create the topics the worker reads and writes at start when missing.",
    )
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How to talk to the broker."
    )
    broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (with SASL_* protocols)."
    )
    broker_sasl_username: str = Field("", description="SASL user name.")
    broker_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password.")
    broker_ssl_cafile: str = Field("", description="CA bundle for TLS; empty = system CAs.")
    broker_ssl_certfile: str = Field("", description="Client certificate for mutual TLS.")
    broker_ssl_keyfile: str = Field("", description="Client key for mutual TLS.")
    consumer_fetch_max_wait_ms: int = Field(
        20, ge=1, le=30000, description="Longest a fetch may wait for data (Faust uses 1500)."
    )
    producer_linger_ms: float = Field(
        5.0,
        ge=0,
        description="Producer batching delay for records sent one at a time, ms (alerts, dead "
        "letters and changelog records go out as record batches at the end of each batch).",
    )
    producer_max_batch_bytes: int = Field(
        524288,
        ge=16384,
        le=1048576,
        description="Largest record batch the worker sends, bytes. A batch's changelog records "
        "for one partition go out in as few record batches as fit, and each further batch of a "
        "partition waits for the broker's answer to the one before: at the client's default "
        "(16384) a 500-message batch took about 10 requests in a row. Keep it under the "
        "topics' max.message.bytes (Kafka's default: 1 MiB).",
    )
    producer_request_timeout: float = Field(
        30.0,
        gt=0,
        description="Longest the worker waits for the answer to one produce request before it "
        "drops the connection and sends again on a new one, s.",
    )
    broker_session_timeout: float = Field(30.0, gt=0, description="Consumer session timeout, s.")
    broker_heartbeat_interval: float = Field(3.0, gt=0, description="Heartbeat interval, s.")
    broker_rebalance_timeout: float = Field(30.0, gt=0, description="Rebalance timeout, s.")


class FieldSettings(_Section):
    """The input mapping: which field of the input JSON plays which role."""

    field_user_id: str = Field(
        "userId", min_length=1, description="Field holding the user (card/customer) id; required."
    )
    field_amount: str = Field(
        "amount", min_length=1, description="Field holding the amount; required."
    )
    field_timestamp: str = Field(
        "timestamp",
        min_length=1,
        description="Field holding the event time (ISO-8601 or epoch s/ms); required.",
    )
    field_timestamp_unit: TimestampUnit = Field(
        "auto",
        description="How a numeric timestamp is read: auto (epoch seconds, or milliseconds "
        "past 1e11), s, ms, or h / d for a simulator's step counter (hours or days; a CSV "
        "replay starts step 0 at its start time). ISO-8601 strings are always read as such.",
    )
    field_transaction_id: str = Field(
        "transactionId",
        min_length=1,
        description="Field holding the transaction id (else topic-partition-offset).",
    )
    field_merchant: str = Field(
        "merchantId",
        min_length=1,
        description="Field naming the merchant or terminal (optional in the input).",
    )
    field_country: str = Field(
        "country", min_length=1, description="Field holding the country (optional in the input)."
    )
    field_channel: str = Field(
        "channel",
        min_length=1,
        description="Field holding the channel, e.g. card present or not (optional).",
    )
    field_category: str = Field(
        "category", min_length=1, description="Field holding the merchant category (optional)."
    )
    field_latitude: str = Field(
        "latitude",
        min_length=1,
        description="Field holding the latitude or y coordinate (optional).",
    )
    field_longitude: str = Field(
        "longitude",
        min_length=1,
        description="Field holding the longitude or x coordinate (optional).",
    )

    def mapping(self) -> FieldMapping:
        """The core's input mapping."""
        return FieldMapping(
            user_id=self.field_user_id,
            amount=self.field_amount,
            timestamp=self.field_timestamp,
            timestamp_unit=self.field_timestamp_unit,
            transaction_id=self.field_transaction_id,
            merchant=self.field_merchant,
            country=self.field_country,
            channel=self.field_channel,
            category=self.field_category,
            latitude=self.field_latitude,
            longitude=self.field_longitude,
        )


class DetectionSettings(_Section):
    """Rules and model parameters; the worker turns them into the core's own config."""

    amount_threshold: float | None = Field(
        None,
        ge=0,
        description="Rule fires when the amount is strictly greater than this, in the stream's "
        "amounts. Unset: 10,000 of the amount unit (10,000 on a stream in unit 1, 1,000,000 on "
        "a stream of cents).",
    )
    amount_unit: float | None = Field(
        None,
        gt=0,
        description="The unit the features read amounts in (amounts are divided by it; a set "
        "amount threshold and the rules stay in the stream's unit). Unset: 1 while the median "
        "of the first 100 amounts is within [10, 1000], else the power of ten that puts it in "
        "[10, 100), kept in the checkpoint.",
    )
    timestamp_step: float | None = Field(
        None,
        ge=0,
        description="The step the stream's timestamps come in, in seconds (a simulator's day "
        "or hour counter, times written to the minute): two payments of a user in one step are "
        "read as a third of it apart. 0: exact. Unset: a day, an hour or a minute when the "
        "first 100 timestamps all lie whole multiples of it apart, else exact; kept in the "
        "checkpoint.",
    )
    habit_spike_zscore: float = Field(
        4.5,
        gt=0,
        description="Habit-spike rule: fires when the log amount lies this many of the user's "
        "own spreads above their habit.",
    )
    habit_spike_min_history: int = Field(
        3, ge=1, description="Habit-spike rule: earlier transactions a user needs first."
    )
    unfamiliar_place_zscore: float = Field(
        2.0,
        description="Unfamiliar-place rule: fires on a new merchant in a new country when the "
        "amount's z-score against the user's habit is at least this.",
    )
    unfamiliar_place_distance_ratio: float = Field(
        3.0,
        ge=0,
        description="Unfamiliar-place rule: where a transaction has coordinates, it must also "
        "lie at least this many times the user's usual distance from their centre (0: "
        "coordinates do not matter).",
    )
    deviation_zscore: float = Field(
        4.5,
        gt=0,
        description="User-deviation rule: fires when the amount's z-score on the user's own "
        "scale (raw or log, whichever fits) is at least this.",
    )
    deviation_min_history: int = Field(
        5, ge=1, description="User-deviation rule: transactions a user needs before amounts count."
    )
    deviation_zscore_after_alert: float = Field(
        3.0,
        gt=0,
        description="User-deviation rule: the amount z-score that counts shortly after the "
        "first alert of the user's current episode.",
    )
    deviation_alert_memory_days: float = Field(
        14.0,
        ge=0,
        description="How long after the first alert of a user's episode the lower z-score "
        "applies, days; an alert more than this after the one before begins a new episode.",
    )
    burst_zscore: float = Field(
        4.0,
        gt=0,
        description="User-deviation rule: fires on a burst this surprising against the user's "
        "own usual rate (normal-equivalent z).",
    )
    spree_threshold: float = Field(
        3.0,
        gt=0,
        description="User-deviation rule: fires on a spree, the user's above-habit amounts "
        "summed over days (a CUSUM of each amount's z-score beyond 1, lifted where the amount "
        "is rare in its category, fading over 3 days), "
        "this high, on a payment above habit that takes the day's spending to "
        "FRAUDSTREAM_SPREE_DAY_SPEND.",
    )
    spree_day_spend: float = Field(
        1.5,
        description="User-deviation rule: the day's spending a spree must reach, as the "
        "feature spend_1d gives it (log of the day's total against what the user's own rate "
        "and typical amount predict: 1.5 is about 4.5 times).",
    )
    learn_zscore: float = Field(
        3.0,
        gt=0,
        description="Transactions with a burst z-score of at least this are kept out of learning.",
    )
    common_category_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="In a category new to the user, an amount that at least this share of the "
        "category's recent payments reach is no amount evidence by itself (the habit-spike "
        "rule, the user-deviation rule's amount part and Half-Space Trees' habit input); "
        "0 turns it off. Without a category, the same share of a merchant's payments, at a "
        "merchant new to the user.",
    )
    scale_prior_weight: float = Field(
        50.0,
        ge=0,
        description="How many of a user's own amounts the stream's evidence for raw against "
        "log amounts is worth to a young history (0: each user on their own evidence alone).",
    )
    hst_n_trees: int = Field(25, ge=1, description="Half-Space Trees: number of trees.")
    hst_height: int = Field(5, ge=1, le=20, description="Half-Space Trees: tree height.")
    hst_window_size: int = Field(1000, ge=1, description="Half-Space Trees: reference window.")
    hst_seed: int = Field(42, description="Half-Space Trees: random seed.")
    score_threshold: float = Field(
        0.76,
        ge=0,
        le=1,
        description="Model alert when score >= this (the floor, in adaptive mode).",
    )
    score_quantile: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Adaptive threshold: quantile of recent scores; unset/empty/off = fixed.",
    )
    score_quantile_window: int = Field(5000, ge=10, description="Scores the quantile looks at.")
    score_quantile_min_samples: int = Field(
        1000, ge=1, description="Scores seen after warm-up before the adaptive threshold is used."
    )
    model_warmup: int = Field(
        2000, ge=0, description="Events learned before model alerts; 0 = one HST window."
    )
    velocity_window_seconds: float = Field(
        30.0, gt=0, description="Time constant of the per-user burst (velocity) feature, s."
    )
    labels_enabled: bool = Field(
        True,
        description=(
            "Consume the labels topic and learn from it. False: decisions also skip what only "
            "labels use (the classifier's input, merchant statistics, features kept for a label)."
        ),
    )
    label_horizon_days: float = Field(
        7.0,
        gt=0,
        description="Event time after which a transaction without a fraud label counts as legit.",
    )
    label_late_window_days: float = Field(
        DEFAULT_LATE_WINDOW_DAYS,
        ge=0,
        description="How long after the horizon a fraud label still corrects a matured one.",
    )
    label_coverage: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of frauds that ever get a fraud label (chargebacks, analysts): "
        "an unreported fraud matures as legit, so the precision the labels are asked to show "
        "(the classifier's target, the parts' trust while it is certified) is this share of "
        "the true one.",
    )
    pending_max_entries: int = Field(
        500_000, ge=1, description="Transactions kept awaiting their label; oldest mature early."
    )
    held_labels_max_entries: int = Field(
        100_000,
        ge=1,
        description="Labels kept waiting for a transaction not read yet; oldest dead-lettered.",
    )
    classifier_kind: Literal["logistic", "logistic_undersampled", "forest"] = Field(
        "logistic", description="The online supervised model trained from labels."
    )
    classifier_threshold: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Classifier alert line on P(fraud) until the labels have calibrated it "
        "(1 = no alert of its own before that; its probability still ranks).",
    )
    classifier_target_precision: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Calibrated alert line: the lowest P(fraud) whose alerts reached this "
        "precision on recently resolved transactions.",
    )
    classifier_fallback_precision: float = Field(
        0.5,
        gt=0,
        le=1,
        description="While no line reaches the target precision (too few frauds to show it): "
        "the lowest P(fraud) whose alerts reached this one, uncertified (0.5 is the bar the "
        "rules and Half-Space Trees are held to). At the target or above: the line goes to 1.",
    )
    classifier_calibration_window: int = Field(
        50_000, ge=100, description="Resolved transactions the calibration looks back on."
    )
    classifier_calibration_days: float = Field(
        7.0,
        gt=0,
        description="Event time the calibration looks back on, in days: probabilities the "
        "classifier gave before it had learned much age out of the line.",
    )
    classifier_calibration_min_hits: int = Field(
        10, ge=1, description="Frauds above the line the calibration needs before it moves it."
    )
    classifier_threshold_floor: float = Field(
        0.5, gt=0, le=1, description="The calibrated alert line never goes below this."
    )
    classifier_weight_pos: float = Field(
        1.0, gt=0, description="Weight of a fraud in the logistic loss (class imbalance)."
    )
    classifier_min_frauds: int = Field(
        50, ge=1, description="Frauds the classifier learns before its probability is used."
    )
    classifier_min_legit: int = Field(
        1000, ge=1, description="Legit transactions it learns before its probability is used."
    )

    @field_validator("score_quantile", mode="before")
    @classmethod
    def _quantile_off(cls, value: object) -> object:
        """``off``, ``none`` or an empty value switch the adaptive threshold off."""
        if isinstance(value, str) and value.strip().lower() in {"", "none", "off", "fixed"}:
            return None
        return value

    @property
    def effective_warmup(self) -> int:
        """Events the model must learn before its scores may raise alerts."""
        return self.model_warmup or self.hst_window_size

    @property
    def amount_line(self) -> float:
        """The amount threshold on a stream in unit 1 (what the demo's load aims above)."""
        from fraudstream.core.rules import DEFAULT_AMOUNT_THRESHOLD

        return DEFAULT_AMOUNT_THRESHOLD if self.amount_threshold is None else self.amount_threshold

    def detector_config(self) -> DetectorConfig:
        """The core's own configuration (the core never reads the process settings)."""
        from fraudstream.core.detector import DetectorConfig  # the core imports River: lazily
        from fraudstream.core.model import HSTParams
        from fraudstream.core.supervised import CalibrationParams, ClassifierParams, TrustParams

        return DetectorConfig(
            amount_threshold=self.amount_threshold,
            habit_spike_zscore=self.habit_spike_zscore,
            habit_spike_min_history=self.habit_spike_min_history,
            unfamiliar_place_zscore=self.unfamiliar_place_zscore,
            unfamiliar_place_distance_ratio=self.unfamiliar_place_distance_ratio,
            deviation_zscore=self.deviation_zscore,
            deviation_min_history=self.deviation_min_history,
            deviation_zscore_after_alert=self.deviation_zscore_after_alert,
            deviation_alert_memory=self.deviation_alert_memory_days * 86400.0,
            burst_zscore=self.burst_zscore,
            spree_threshold=self.spree_threshold,
            spree_day_spend=self.spree_day_spend,
            learn_zscore=self.learn_zscore,
            common_category_share=self.common_category_share,
            scale_prior_weight=self.scale_prior_weight,
            score_threshold=self.score_threshold,
            score_quantile=self.score_quantile,
            score_quantile_window=self.score_quantile_window,
            score_quantile_min_samples=self.score_quantile_min_samples,
            hst=HSTParams(
                n_trees=self.hst_n_trees,
                height=self.hst_height,
                window_size=self.hst_window_size,
                seed=self.hst_seed,
            ),
            warmup=self.effective_warmup,
            velocity_tau=self.velocity_window_seconds,
            classifier=ClassifierParams(
                kind=self.classifier_kind,
                weight_pos=self.classifier_weight_pos,
                min_frauds=self.classifier_min_frauds,
                min_legit=self.classifier_min_legit,
            ),
            calibration=CalibrationParams(
                initial=self.classifier_threshold,
                target_precision=self.classifier_target_precision,
                window=self.classifier_calibration_window,
                min_hits=self.classifier_calibration_min_hits,
                floor=self.classifier_threshold_floor,
                fallback_precision=self.classifier_fallback_precision,
                horizon=self.classifier_calibration_days * 86400.0,
                coverage=self.label_coverage,
            ),
            trust=TrustParams(coverage=self.label_coverage),
            amount_unit=self.amount_unit,
            timestamp_step=self.timestamp_step,
            labels_enabled=self.labels_enabled,
        )


class WorkerSettings(_Section):
    """The worker process: batching, state, supervision, web server and logging."""

    broker_unavailable_timeout: float = Field(
        120.0, gt=0, description="Exit (code 3) after the broker is unreachable this long, s."
    )
    broker_check_interval: float = Field(5.0, gt=0, description="Broker reachability check, s.")
    max_message_bytes: int = Field(
        65536, ge=64, description="Larger input messages go to the DLQ unparsed."
    )
    batch_max_events: int = Field(
        100,
        ge=1,
        description="Most messages handled as one batch (profile changes reach the changelog "
        "once per user and batch); 1 = one message at a time, with "
        "FRAUDSTREAM_BATCH_BACKLOG_EVENTS=0 (a backlog is otherwise taken in larger batches). "
        "A batch's alerts leave when it ends, so smaller batches keep the tail near capacity.",
    )
    batch_backlog_events: int = Field(
        500,
        ge=0,
        description="When this many fetched messages are already waiting (a backlog), one "
        "batch takes them all: they are late anyway, and larger batches drain them faster. "
        "0 or at most FRAUDSTREAM_BATCH_MAX_EVENTS: off. Direct delivery only.",
    )
    batch_max_wait_ms: float = Field(
        5.0,
        gt=0,
        description="Longest the worker waits to fill a batch before handling what it has, ms.",
    )
    direct_delivery: bool = Field(
        True,
        description="Hand fetched messages to the batch handler without Faust's events and "
        "streams (same commits and rebalances; less work per message).",
    )
    gc_young_threshold: int = Field(
        50_000,
        ge=0,
        description="Net allocations between two young-generation garbage collections "
        "(Python's default 700 cost the worker 8-10% of its CPU); 0 = Python's settings.",
    )
    cached_histories: int = Field(
        10_000,
        ge=0,
        description="Most recently active users whose decoded history the worker keeps beside "
        "its stored bytes, so their next transaction skips decoding it (~3.5 KB each; about "
        "5% of the handler's CPU when they come back); 0 = decode every time.",
    )
    model_checkpoint_interval: float = Field(
        30.0, gt=0, description="Seconds between model checkpoints (also written on shutdown)."
    )
    model_checkpoint_path: str = Field(
        "", description="Model checkpoint file; empty = <data_dir>/<app_id>-model.ckpt."
    )
    # From 1: Faust's worker refuses port 0, so the settings do too (a clear error, sooner).
    web_port: int = Field(6066, ge=1, le=65535, description="Faust web server port.")
    web_host: str = Field("127.0.0.1", description="Faust web server bind address.")
    data_dir: str = Field("fraudstream-data", description="Faust data directory (table stores).")
    table_store: str = Field(
        "memory://", description="Profile table store: memory:// or rocksdb://"
    )
    log_level: Literal["debug", "info", "warn", "error", "crit"] = "info"
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "uvloop", description="Worker event loop; uvloop when installed, else asyncio."
    )
    faust_monitor: bool = Field(
        False, description="Keep Faust's Monitor sensor (per-event statistics fraudstream ignores)."
    )
    progress_interval: float = Field(
        10.0, gt=0, description="Seconds between progress lines in the worker log."
    )
    log_repeat_interval: float = Field(
        10.0,
        ge=0,
        description="A Kafka client message repeated within this many seconds is logged once "
        "(with a count); 0 = log every one.",
    )
    worker_name: str = Field("", description="Tag of this worker's metrics; default hostname.")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="at_least_once: offsets committed after the batch's writes, duplicates "
        "keep their alertId; exactly_once: each batch's outputs, changelog records and offsets "
        "in one Kafka transaction per input partition, read with read_committed.",
    )

    @property
    def batch_max_wait(self) -> float:
        """:attr:`batch_max_wait_ms` in seconds, as Faust takes it."""
        return self.batch_max_wait_ms / 1000.0


class InfluxSettings(_Section):
    """The InfluxDB sink (used when ``influx_enabled``)."""

    influx_enabled: bool = Field(False, description="Write points to InfluxDB.")
    influx_url: str = Field("http://localhost:8086", description="InfluxDB base URL.")
    influx_token: SecretStr = Field(SecretStr(""), description="InfluxDB API token.")
    influx_token_file: str | None = Field(
        None, description="File holding the token (e.g. a Docker secret); wins over the variable."
    )
    influx_org: str = Field("fraud-detection-org", description="InfluxDB organisation.")
    influx_bucket: str = Field("fraud-detection-bucket", description="InfluxDB bucket.")
    influx_write_transactions: bool = Field(
        True, description="Also write one point per transaction (not only per alert)."
    )
    influx_batch_size: int = Field(5000, ge=1, description="Points per write request.")
    influx_flush_interval: float = Field(1.0, gt=0, description="Seconds before a partial batch.")
    influx_max_buffered_points: int = Field(
        100_000, ge=1, description="Points held while InfluxDB is unreachable; oldest dropped."
    )
    influx_close_timeout: float = Field(
        10.0, gt=0, description="Seconds a stopping worker spends draining buffered points."
    )

    @field_validator("influx_token_file")
    @classmethod
    def _token_file_readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        """With the sink on, a token file must be readable now: refused with the settings, not
        a traceback when the worker starts its sink."""
        if value and info.data.get("influx_enabled"):
            _read_token_file(value)
        return value

    def influx_token_value(self) -> str:
        """The InfluxDB token, from ``influx_token_file`` when set, else the variable."""
        if self.influx_token_file:
            return _read_token_file(self.influx_token_file)
        return self.influx_token.get_secret_value()


def _read_token_file(path: str) -> str:
    """The token in ``path`` without its newline; a ``ValueError`` naming the variable and the
    path when the file cannot be read."""
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"{ENV_PREFIX}INFLUX_TOKEN_FILE={path} cannot be read: {reason}") from exc


class Settings(BaseSettings):
    """The root: one section per concern, each read from the environment when not given."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    fields: FieldSettings = Field(default_factory=FieldSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)

    @classmethod
    def variables(cls) -> dict[str, FieldInfo]:
        """Every setting of every section by its ``FRAUDSTREAM_*`` variable name."""
        sections = (KafkaSettings, FieldSettings, DetectionSettings, WorkerSettings, InfluxSettings)
        return {
            f"{ENV_PREFIX}{name.upper()}": field
            for section in sections
            for name, field in section.model_fields.items()
        }

    @property
    def consumed_topics(self) -> list[str]:
        """Topics the worker's consumer group reads: the input, and the labels unless off.

        A topic among them created while the worker runs rebalances its group once the
        consumer's metadata refresh finds it: the worker creates them before it subscribes
        (unless ``declare_topics`` is off).
        """
        labels = [self.kafka.labels_topic] if self.detection.labels_enabled else []
        return [self.kafka.input_topic, *labels]

    @property
    def worker_topics(self) -> list[str]:
        """Every plain topic the worker reads or writes (the compacted rules topic aside)."""
        kafka = self.kafka
        written = [kafka.alerts_topic, kafka.dlq_topic, kafka.shadow_topic, kafka.decisions_topic]
        return list(dict.fromkeys([*self.consumed_topics, *filter(None, written)]))

    @property
    def checkpoint_file(self) -> Path:
        """Where this worker keeps its model checkpoint."""
        path = self.worker.model_checkpoint_path
        return Path(path or f"{self.worker.data_dir}/{self.kafka.app_id}-model.ckpt")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
