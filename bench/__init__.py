"""Benchmarks that print figures (never timed tests): see README.md, "Benchmarks"."""
