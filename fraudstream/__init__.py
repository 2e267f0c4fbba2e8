"""fraudstream: real-time card-fraud detection on Kafka with Faust and River."""

__version__ = "0.1.0"
