"""Great Expectations suites as code and the runner that turns a validation into a Dagster asset-check result.

Not built yet: the data-quality layer is issue 3. Until then the quality gates are the raw layer's row-level
quarantine (ml/ingest/raw_loader.py) and the dbt tests, which surface as Dagster asset checks.
"""
