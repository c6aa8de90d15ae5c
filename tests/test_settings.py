"""Settings: environment over .env, production secret rules, persisted development secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.security import configure_password_hashing, hash_password, verify_password
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


def test_api_processes_and_where_their_rate_limits_live(tmp_path: Path) -> None:
    def load(**env: str) -> tuple[int, str, int]:
        settings = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), **env}, env_file=None)
        return settings.api_processes, settings.rate_limits, settings.api_listen_port

    assert load() == (1, "memory", 8000), "one process counts in memory"
    assert load(MQCHAT_BROKER="nats") == (2, "store", 8000), "two on NATS, sharing their limits"
    assert load(MQCHAT_BROKER="nats", MQCHAT_API_PROCESSES="1") == (1, "memory", 8000)
    assert load(MQCHAT_API_PROCESSES="3", MQCHAT_RATE_LIMITS="memory") == (3, "memory", 8000), "as asked"
    assert load(MQCHAT_RATE_LIMITS="store", MQCHAT_API_INSTANCE="1", MQCHAT_API_PORT="9000") == (1, "store", 9001)
    for bad in ({"MQCHAT_API_PROCESSES": "0"}, {"MQCHAT_API_PROCESSES": "two"}, {"MQCHAT_RATE_LIMITS": "redis"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load(**bad)


def test_bridge_workers_default_to_two_on_nats(tmp_path: Path) -> None:
    def workers(**env: str) -> int:
        return Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), **env}, env_file=None).bridge_workers

    assert (workers(), workers(MQCHAT_BROKER="external"), workers(MQCHAT_BROKER="nats")) == (1, 1, 2)
    assert workers(MQCHAT_BROKER="nats", MQCHAT_BRIDGE_WORKERS="3") == 3, "as asked"


def test_the_services_know_every_nats_node(tmp_path: Path) -> None:
    """The bridge and the API fail over between these addresses (core.mqtt.endpoints)."""

    def load(**env: str) -> Settings:
        return Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_BROKER": "nats", **env}, env_file=None)

    here = load(MQCHAT_MQTT_PORT="2000", MQCHAT_NATS_PORT="3000")
    assert here.mqtt_endpoints == [("127.0.0.1", 2000), ("127.0.0.1", 2001), ("127.0.0.1", 2002)], "node i on MQCHAT_MQTT_PORT + i"
    assert here.nats_servers == ["nats://127.0.0.1:3000", "nats://127.0.0.1:3001", "nats://127.0.0.1:3002"]
    machines = load(MQCHAT_NATS_HOSTS="nats-a, nats-b")
    assert machines.nats_nodes == 2, "one node per host"
    assert machines.mqtt_endpoints == [("nats-a", 1883), ("nats-b", 1884)]
    assert machines.nats_servers == ["nats://nats-a:4222", "nats://nats-b:4223"]
    assert Settings.load({"MQCHAT_DATA_DIR": str(tmp_path)}, env_file=None).mqtt_endpoints == [("127.0.0.1", 1883)], "one broker"
    with pytest.raises(ConfigError, match=r"MQCHAT_NATS_HOSTS: .*3 hosts for MQCHAT_NATS_NODES=2"):
        load(MQCHAT_NATS_HOSTS="a,b,c", MQCHAT_NATS_NODES="2")


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


def test_password_hashing_is_owasp_strong_by_default_and_in_production(tmp_path: Path) -> None:
    defaults = Settings()
    assert (defaults.argon2_memory_kib, defaults.argon2_time_cost, defaults.argon2_parallelism) == (65536, 3, 4)
    production = {"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_ENV": "production", "JWT_SECRET": "k" * 40}
    for weak in ({"MQCHAT_ARGON2_MEMORY_KIB": "19455"}, {"MQCHAT_ARGON2_TIME_COST": "1"}):
        with pytest.raises(ConfigError, match="MQCHAT_ARGON2_MEMORY_KIB must be at least 19456"):
            Settings.load({**production, **weak}, env_file=None)
    minimum = {"MQCHAT_ARGON2_MEMORY_KIB": "19456", "MQCHAT_ARGON2_TIME_COST": "2", "MQCHAT_ARGON2_PARALLELISM": "1"}
    assert Settings.load({**production, **minimum}, env_file=None).argon2_memory_kib == 19456
    cheap = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_ARGON2_TIME_COST": "1"}, env_file=None)
    assert cheap.argon2_time_cost == 1, "development may hash cheaply (the test systems do)"


async def test_new_hashes_use_the_configured_parameters() -> None:
    try:
        configure_password_hashing(Settings(argon2_memory_kib=1024, argon2_time_cost=1, argon2_parallelism=1))
        cheap = await hash_password("correct-horse-1")
        assert cheap.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        configure_password_hashing(Settings())
        strong = await hash_password("correct-horse-1")
        assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert await verify_password("correct-horse-1", cheap), "older hashes keep verifying with their own parameters"
        assert not await verify_password("wrong-horse-1", cheap) and not await verify_password("x", None)
    finally:
        configure_password_hashing(Settings())


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


def test_fractional_rates_and_blank_values(tmp_path: Path) -> None:
    """Rates are numbers, not integers; a blank variable counts as unset (its default)."""
    env = {"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_SEND_RATE": "2.5", "MQCHAT_PLATFORM_RATE": "0.5", "MQCHAT_API_PORT": "  "}
    settings = Settings.load(env, env_file=None)
    assert (settings.send_rate, settings.platform_rate, settings.api_port) == (2.5, 0.5, 8000)


def test_a_bad_value_names_its_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MQCHAT_SEND_BURST.*'lots'"):
        Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "MQCHAT_SEND_BURST": "lots"}, env_file=None)


def test_defaults_that_follow_another_variable(tmp_path: Path) -> None:
    """MQCHAT_PUBLIC_HOST follows a real MQCHAT_HOST; private webhook targets are allowed only in development."""
    base = {"MQCHAT_DATA_DIR": str(tmp_path)}
    assert Settings.load({**base, "MQCHAT_HOST": "0.0.0.0"}, env_file=None).public_host == "localhost"
    assert Settings.load({**base, "MQCHAT_HOST": "10.1.2.3"}, env_file=None).public_host == "10.1.2.3"
    production = Settings.load({**base, "MQCHAT_ENV": "production", "JWT_SECRET": "k" * 40}, env_file=None)
    assert production.webhook_allow_private is False and Settings().webhook_allow_private is True


def test_copies_with_changes_keep_the_original(tmp_path: Path) -> None:
    settings = Settings.load({"MQCHAT_DATA_DIR": str(tmp_path)}, env_file=None)
    copy = settings.model_copy(update={"auth_rate_limit": 3})
    assert (copy.auth_rate_limit, settings.auth_rate_limit) == (3, 20)
    assert settings.with_broker("external", 1999).broker_address == ("127.0.0.1", 1999)
    assert settings.with_store_uri("mongodb://db:1").mongodb_uri == "mongodb://db:1"


def test_every_variable_in_the_readme_is_a_setting() -> None:
    """The README's configuration tables name only variables some field reads."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    documented = {
        name for line in table.splitlines() if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }  # fmt: skip
    aliases = {field.validation_alias for field in Settings.model_fields.values()}
    assert documented and documented <= aliases, sorted(documented - aliases)


MEMORY_BOUNDS = {
    "MQCHAT_CONVERSATION_CACHE_SIZE": "conversation_cache_size",
    "MQCHAT_RATE_LIMIT_KEYS": "rate_limit_keys",
    "MQCHAT_TYPING_KEYS": "typing_keys",
    "MQCHAT_ANNOUNCED_IDS": "announced_ids",
    "MQCHAT_PRESENCE_USERS": "presence_users",
    "MQCHAT_KNOWN_BROKER_ACCOUNTS": "known_broker_accounts",
    "MQCHAT_CURSOR_POSITIONS": "cursor_positions",
}


@pytest.mark.parametrize("variable", sorted(MEMORY_BOUNDS))
def test_every_in_memory_bound_is_a_positive_setting(tmp_path: Path, variable: str) -> None:
    field = MEMORY_BOUNDS[variable]
    assert getattr(Settings.load({"MQCHAT_DATA_DIR": str(tmp_path)}, env_file=None), field) >= 10_000
    assert getattr(Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), variable: "7"}, env_file=None), field) == 7
    with pytest.raises(ConfigError, match=variable):
        Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), variable: "0"}, env_file=None)


@pytest.mark.parametrize(
    ("variable", "field", "default"),
    [("MQCHAT_MAX_INFLIGHT", "max_inflight", 100), ("MQCHAT_BACKLOG_HIGH_WATER", "backlog_high_water", 1000),
     ("MQCHAT_BACKLOG_LIMIT", "backlog_limit", 1000)],
)  # fmt: skip
def test_delivery_limits_are_positive_settings(tmp_path: Path, variable: str, field: str, default: int) -> None:
    """The embedded broker's in-flight window (as Mosquitto's max_inflight_messages) and backlog limits: at least 1."""
    base = {"MQCHAT_DATA_DIR": str(tmp_path)}
    assert getattr(Settings.load(base, env_file=None), field) == default
    assert getattr(Settings.load({**base, variable: "7"}, env_file=None), field) == 7
    with pytest.raises(ConfigError, match=variable):
        Settings.load({**base, variable: "0"}, env_file=None)
