"""Data-quality domain logic without Dagster: reconciliation of row counts between layers, quarantine summaries
and volume checks. The Great Expectations suites live in the top-level ``expectations`` package."""
