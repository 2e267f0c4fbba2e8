"""Where processed transactions and alerts go besides Kafka (InfluxDB, ...)."""

from fraudstream.sinks.base import ProcessedRecord, Sink

__all__ = ["ProcessedRecord", "Sink"]
