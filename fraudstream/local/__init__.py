"""Real servers started on this machine for tests and benchmarks (e.g. Apache Kafka)."""
