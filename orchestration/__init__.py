"""The Dagster layer of aigc-commerce: assets, checks, partitions, resources, schedules. Thin by design."""
