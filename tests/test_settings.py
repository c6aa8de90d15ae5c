"""Settings: environment over .env, production secret rules, persisted development secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import ConfigError, Settings


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path)}, env_file=None)
    assert (settings.env, settings.api_port, settings.mqtt_port, settings.ws_port) == ("development", 8000, 1883, 9001)
    assert settings.broker == "embedded" and settings.mongodb_uri is None
    assert settings.data_dir == tmp_path.resolve()


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MQCHAT_API_PORT=9100\nMQCHAT_MQTT_PORT=2883\nMONGODB_URI=mongodb://db.example:27017\n")
    settings = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_API_PORT": "9200"}, env_file=env_file)
    assert settings.api_port == 9200 and settings.mqtt_port == 2883
    assert settings.mongodb_uri == "mongodb://db.example:27017"


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path)}, env_file=None)
    second = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path)}, env_file=None)
    assert len(first.jwt_secret) >= 32 and first.jwt_secret == second.jwt_secret
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("secret", [None, "", "change-me", "secret", "too-short-but-not-default"])
def test_production_refuses_missing_or_default_secret(tmp_path: Path, secret: str | None) -> None:
    env = {"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_ENV": "production"}
    if secret is not None:
        env["JWT_SECRET"] = secret
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        Settings.load(env, env_file=None)
    assert not (tmp_path / "jwt_secret").exists(), "production never generates a secret"


def test_production_accepts_a_real_secret(tmp_path: Path) -> None:
    secret = "k" * 40
    settings = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_ENV": "production", "JWT_SECRET": secret}, env_file=None)
    assert settings.is_production and settings.jwt_secret == secret


@pytest.mark.parametrize(
    "env", [{"MQCHAT_API_PORT": "eighty"}, {"MQCHAT_ENV": "staging"}, {"MQCHAT_BROKER": "hivemq"}, {"MQCHAT_ACCESS_TOKEN_TTL": "0"}]
)
def test_invalid_values_are_reported(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), **env}, env_file=None)


def test_embedded_broker_connect_limits(tmp_path: Path) -> None:
    """MQCHAT_CONNECT_TIMEOUT_MS and MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS: defaults, values, positive only."""
    defaults = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path)}, env_file=None)
    assert (defaults.connect_timeout_ms, defaults.pending_connections_per_address) == (10_000, 64)
    env = {"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_CONNECT_TIMEOUT_MS": "2500", "MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS": "8"}
    settings = Settings.load(env, env_file=None)
    assert (settings.connect_timeout_ms, settings.pending_connections_per_address) == (2500, 8)
    for name in ("MQCHAT_CONNECT_TIMEOUT_MS", "MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS"):
        with pytest.raises(ConfigError, match=name):
            Settings.load({**env, name: "0"}, env_file=None)
