"""Network tokens and webhook secrets are secret settings: read where they are used, never shown."""

from __future__ import annotations

import pytest

from parley.config import Settings, reveal

SECRETS = (
    "dispatch_x_bearer_token",
    "dispatch_facebook_page_token",
    "dispatch_instagram_token",
    "dispatch_whatsapp_token",
    "webhook_meta_app_secret",
    "webhook_meta_verify_token",
    "webhook_x_consumer_secret",
)


def test_tokens_and_webhook_secrets_never_show_in_the_settings_text(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.setenv(f"PARLEY_{name.upper()}", f"value-of-{name}")
    settings = Settings()
    shown = f"{settings!r} {settings} {settings.model_dump()} {settings.model_dump_json()}"
    for name in SECRETS:
        assert f"value-of-{name}" not in shown, name
        assert reveal(getattr(settings, name)) == f"value-of-{name}"
