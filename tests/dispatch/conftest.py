"""Fixtures of the dispatch tests: settings writing the log adapter's outbox under the test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.config import Settings


@pytest.fixture
def dispatch_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "dispatch_log_path": tmp_path / "outbox.log",
            "dispatch_max_attempts": 3,
            "dispatch_backoff_base_seconds": 2.0,
            "dispatch_backoff_cap_seconds": 60.0,
        }
    )
