"""Loading landing files into the warehouse's ``raw`` schema (DuckDB only, no Dagster)."""
