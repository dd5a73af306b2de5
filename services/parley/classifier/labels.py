"""Parley's five intents and six routing topics (`docs/LABELS.md`), for the services that name them without
loading the models."""

from parley.messages import INTENT_NAMES

# The intents' names as the protos number them (parley.messages); their order is the order of the scores.
INTENTS: tuple[str, ...] = tuple(INTENT_NAMES.values())
TOPICS = ("billing", "orders_delivery", "account_access", "technical", "travel", "general")
