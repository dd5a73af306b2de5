"""Parley's five intents and six routing topics (`docs/LABELS.md`), for the services that name them without
loading the models."""

INTENTS = ("praise", "question", "complaint", "urgent", "other")
TOPICS = ("billing", "orders_delivery", "account_access", "technical", "travel", "general")
