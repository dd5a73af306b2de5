"""The classifier service: intent, topic, urgency, entities and the bot's answer for inbound messages."""
