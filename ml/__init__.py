"""Domain code of aigc-commerce: sources, features, models and metrics.

Nothing in this package imports Dagster; everything is testable with a DataFrame or a DuckDB connection.
"""
