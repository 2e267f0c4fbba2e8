"""Tests of the load generator (``python -m producer``)."""
