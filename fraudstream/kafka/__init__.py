"""Kafka connection settings for aiokafka and Faust, bootstrap parsing and topic admin."""
