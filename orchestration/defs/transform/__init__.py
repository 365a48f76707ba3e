"""dbt: staging, intermediate and mart models as partitioned assets, dbt tests as asset checks."""
