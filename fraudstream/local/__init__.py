"""Local tooling for the demo, evaluate and tests: Tansu, a real Apache Kafka, worker processes."""
