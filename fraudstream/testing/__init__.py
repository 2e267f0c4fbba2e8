"""Reusable dev tooling for tests and benchmarks (stdlib only, never imported by the worker)."""
