"""Load generator for fraudstream: synthetic labeled card traffic or CSV replay into Kafka.

The pieces other commands use (``fraudstream evaluate``, ``fraudstream demo``):

* :class:`ScenarioGenerator` / :class:`GeneratorParameters`: the synthetic stream.
* :class:`CsvReplay`: a PaySim or generic CSV file as the same kind of records.
* :func:`produce`: send records to Kafka, write ground truth, return a :class:`ProduceSummary`.
"""

from producer.csv_replay import BadRow, CsvFormatError, CsvReplay, CsvScan, read_csv
from producer.generator import (
    FRAUD_SCENARIOS,
    GeneratorParameters,
    ScenarioGenerator,
    UserHabits,
)
from producer.kafka import (
    LABEL_HEADER,
    SCENARIO_HEADER,
    ProducerTuning,
    ProduceSummary,
    produce,
    produce_to_stream,
)
from producer.records import LabeledTransaction

__all__ = [
    "FRAUD_SCENARIOS",
    "LABEL_HEADER",
    "SCENARIO_HEADER",
    "BadRow",
    "CsvFormatError",
    "CsvReplay",
    "CsvScan",
    "GeneratorParameters",
    "LabeledTransaction",
    "ProduceSummary",
    "ProducerTuning",
    "ScenarioGenerator",
    "UserHabits",
    "produce",
    "produce_to_stream",
    "read_csv",
]
