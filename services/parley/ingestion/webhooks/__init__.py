"""HTTP webhooks of the ingestion service: Meta (Pages, Messenger, Instagram, WhatsApp) and X deliveries,
signature-checked, normalized into inbound messages and appended to the inbound log."""

from parley.ingestion.webhooks.app import WebhookEndpoints, WebhookServer, start_webhook_server

__all__ = ["WebhookEndpoints", "WebhookServer", "start_webhook_server"]
