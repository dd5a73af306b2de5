"""dispatch: replies out through channel adapters, with an idempotent outbox, retries and dead letters."""
