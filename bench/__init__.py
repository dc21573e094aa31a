"""Reproducible benchmarks with their data generators (`make bench`)."""
