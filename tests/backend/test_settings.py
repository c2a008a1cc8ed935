"""Settings come from RIFFLE_* variables, are validated at start, and are all documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import SettingsError, env_name, load_settings, settings_fields


def test_defaults_and_types_from_the_environment():
    s = load_settings({"RIFFLE_PORT": "9001", "RIFFLE_RUN_WORKER": "false", "RIFFLE_DATABASE_URL": ""})
    assert s.port == 9001
    assert s.run_worker is False
    assert s.database_url is None
    assert s.base_url == "http://127.0.0.1:9001"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RIFFLE_PORT": "eighty"}, "RIFFLE_PORT"),
        ({"RIFFLE_PORT": "70000"}, "RIFFLE_PORT"),
        ({"RIFFLE_LOG_LEVEL": "LOUD"}, "RIFFLE_LOG_LEVEL"),
        ({"RIFFLE_DATABSE_URL": "postgresql://x"}, "RIFFLE_DATABSE_URL is not a Riffle setting"),
        ({"RIFFLE_DB_POOL_MIN": "30", "RIFFLE_DB_POOL_MAX": "10"}, "RIFFLE_DB_POOL_MIN"),
    ],
)
def test_bad_values_name_the_variable(environ, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_every_setting_is_in_the_readme_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [env_name(f) for f in settings_fields() if f"`{env_name(f)}`" not in readme]
    assert missing == []


def test_production_refuses_the_generated_secret(tmp_path):
    from backend.secrets_store import signing_key

    with pytest.raises(SettingsError, match="RIFFLE_SECRET_KEY"):
        signing_key(load_settings({}, environment="production", data_dir=str(tmp_path)))
    dev = load_settings({}, data_dir=str(tmp_path))
    assert signing_key(dev) == signing_key(dev)  # generated once, then reused
