"""Ingestion: the source's landing files for a day, and their load into the raw schema."""
