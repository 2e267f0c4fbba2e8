"""Local tooling for the demo, evaluate and the tests: embedded broker, worker child process."""
