"""Benchmarks: reproducible runs of the models and policies against public data and peer libraries."""
