"""One folder per domain; each exposes its assets, checks, jobs and schedules."""
