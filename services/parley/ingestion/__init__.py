"""Ingestion: the front door (validation, normalization, de-duplication) and the durable inbound log."""
