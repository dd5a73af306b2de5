"""The README's settings table is the settings object's: regenerated, it must come out unchanged."""

from __future__ import annotations

import importlib.util
import sys

from parley.config import REPO_ROOT, Settings

spec = importlib.util.spec_from_file_location("settings_table", REPO_ROOT / "scripts" / "settings_table.py")
settings_table = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = settings_table  # its dataclasses look their module up there
spec.loader.exec_module(settings_table)


def test_the_readme_settings_table_is_fresh() -> None:
    readme = settings_table.README.read_text(encoding="utf-8")
    assert settings_table.updated(readme) == readme, "run: python scripts/settings_table.py"


def test_every_setting_has_a_row_with_a_meaning() -> None:
    groups = settings_table.groups()
    assert sorted(n for g in groups for n in g.names) == sorted(Settings.model_fields)
    assert all(g.comment or len(g.notes) == len(g.names) for g in groups), [
        g.names for g in groups if not g.comment
    ]
    table = settings_table.table()
    assert "`REDIS_URL`" in table and "`PARLEY_METRICS_PORT`" in table
