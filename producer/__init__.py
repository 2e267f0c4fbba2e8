"""Load generator for fraudstream: synthetic labeled card traffic or CSV replay into Kafka.

The pieces other commands use (``fraudstream evaluate``, ``fraudstream demo``):

* :class:`ScenarioGenerator` / :class:`GeneratorParameters`: the synthetic stream.
* :class:`CsvReplay`: a PaySim or generic CSV file as the same kind of records.
* :class:`HandbookSimulator` / :class:`HandbookParameters`: the Fraud Detection Handbook's
  simulator (records, or numpy batches per day with :meth:`HandbookSimulator.days`).
* :class:`DelayedLabels`: which frauds get a (late) chargeback label, and when in event time.
* :func:`produce`: send records to Kafka, write ground truth, return a :class:`ProduceSummary`.
"""

from fraudstream.arguments import parse_duration_ms  # the one duration syntax of both commands
from producer.csv_replay import BadRow, CsvFormatError, CsvReplay, CsvScan, read_csv
from producer.generator import (
    FRAUD_SCENARIOS,
    GeneratorParameters,
    ScenarioGenerator,
    UserHabits,
)
from producer.handbook import (
    HANDBOOK_SCENARIOS,
    HandbookDay,
    HandbookParameters,
    HandbookPopulation,
    HandbookSimulator,
)
from producer.kafka import (
    LABEL_HEADER,
    SCENARIO_HEADER,
    ProducerTuning,
    ProduceSummary,
    produce,
    produce_to_stream,
)
from producer.labels import DEFAULT_LABELS_TOPIC, DelayedLabels, FraudLabel
from producer.records import LabeledTransaction

__all__ = [
    "DEFAULT_LABELS_TOPIC",
    "FRAUD_SCENARIOS",
    "HANDBOOK_SCENARIOS",
    "LABEL_HEADER",
    "SCENARIO_HEADER",
    "BadRow",
    "CsvFormatError",
    "CsvReplay",
    "CsvScan",
    "DelayedLabels",
    "FraudLabel",
    "GeneratorParameters",
    "HandbookDay",
    "HandbookParameters",
    "HandbookPopulation",
    "HandbookSimulator",
    "LabeledTransaction",
    "ProduceSummary",
    "ProducerTuning",
    "ScenarioGenerator",
    "UserHabits",
    "parse_duration_ms",
    "produce",
    "produce_to_stream",
    "read_csv",
]
