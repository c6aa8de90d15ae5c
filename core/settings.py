"""Runtime configuration, read from the environment and an optional `.env` file.

Settings are built once by the entry point (`Settings.load()`) and passed into the
factories (`create_app`, `build_broker`, `run_bridge`); nothing reads the
environment at import time. Each field names its environment variable beside its
one default; `Settings()` alone is the defaults, without reading the environment.
Copies with changes: `settings.model_copy(update={...})`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from core.roles import Role

# Secrets that ship in examples or are commonly left in place; refused in production.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "development", "mqchat"})
MIN_SECRET_LENGTH = 32
SECRET_FILE = "jwt_secret"
MIN_ARGON2_MEMORY_KIB, MIN_ARGON2_TIME_COST = 19456, 2


DEFAULT_ATTACHMENT_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
# A web origin as browsers serialize it: scheme, host, optional port (it goes into a CSP header).
ORIGIN = re.compile(r"https?://([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")
# Values taken as written (not stripped): credentials and keys.
VERBATIM = frozenset({"mongodb_uri", "jwt_secret", "smtp_host", "smtp_username", "smtp_password", "vapid_private_key",
                      "vapid_public_key", "platform_jwt_secret", "platform_jwt_public_key", "platform_jwks_url",
                      "platform_jwt_issuer", "platform_jwt_audience"})  # fmt: skip

CommaList = Annotated[tuple[str, ...], NoDecode]
Positive = Annotated[int, Field(gt=0)]


class ConfigError(RuntimeError):
    """The configuration cannot be used (for example a default secret in production)."""


def var(default: Any, name: str) -> Any:
    """A field's default and the environment variable that sets it."""
    return Field(default, validation_alias=name)


class Settings(BaseSettings):
    """Everything a component needs to know about its environment."""

    model_config = SettingsConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, case_sensitive=True)

    # --- deployment
    env: Literal["development", "production"] = var("development", "MQCHAT_ENV")
    data_dir: Path = var(Path("data"), "MQCHAT_DATA_DIR")
    jwt_secret: str = var("", "JWT_SECRET")
    log_level: str = var("INFO", "MQCHAT_LOG_LEVEL")
    log_format: Literal["auto", "console", "json"] = var("auto", "MQCHAT_LOG_FORMAT")

    # --- store
    mongodb_uri: str | None = var(None, "MONGODB_URI")
    db_name: str = var("mqchat", "MQCHAT_DB_NAME")
    store_port: int = var(27017, "MQCHAT_STORE_PORT")

    # --- broker
    bind_host: str = var("127.0.0.1", "MQCHAT_HOST")
    public_host: str = var("localhost", "MQCHAT_PUBLIC_HOST")  # default: MQCHAT_HOST unless a loopback/any address
    mqtt_port: int = var(1883, "MQCHAT_MQTT_PORT")
    ws_port: int = var(9001, "MQCHAT_WS_PORT")
    broker: Literal["embedded", "external", "nats"] = var("embedded", "MQCHAT_BROKER")
    mqtt_host: str = var("127.0.0.1", "MQTT_HOST")
    external_mqtt_port: int = var(1883, "MQTT_PORT")
    connect_timeout_ms: Positive = var(10_000, "MQCHAT_CONNECT_TIMEOUT_MS")
    pending_connections_per_address: Positive = var(64, "MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS")
    max_inflight: Positive = var(100, "MQCHAT_MAX_INFLIGHT")  # embedded broker: unacknowledged QoS 1/2 deliveries per connection
    # embedded broker: deliveries waiting (beyond those in flight) for a service connection (the bridge) at which users'
    # messages to it wait for their PUBACK, and for a user's connection at which it is closed (docs/broker.md, "Back-pressure")
    backlog_high_water: Positive = var(1000, "MQCHAT_BACKLOG_HIGH_WATER")
    backlog_limit: Positive = var(1000, "MQCHAT_BACKLOG_LIMIT")
    nats_nodes: Positive = var(3, "MQCHAT_NATS_NODES")  # MQCHAT_BROKER=nats: node i listens on each base port + i
    nats_port: int = var(4222, "MQCHAT_NATS_PORT")  # NATS clients (mqchat's callout service, system connection, request queue)
    nats_cluster_port: int = var(6222, "MQCHAT_NATS_CLUSTER_PORT")  # routes between the nodes
    # conversations whose topics a connection's permissions name, the most recently active first (the rest: inbox only)
    nats_granted_conversations: Positive = var(1000, "MQCHAT_NATS_GRANTED_CONVERSATIONS")
    # one node per machine: node i runs on the i-th host (its count is the number of nodes); default: all on this machine
    nats_hosts: CommaList = var((), "MQCHAT_NATS_HOSTS")
    bridge_workers: Positive = var(1, "MQCHAT_BRIDGE_WORKERS")  # default 2 with MQCHAT_BROKER=nats
    bridge_instance: str = var("worker-1", "MQCHAT_BRIDGE_INSTANCE")

    # --- api
    api_port: int = var(8000, "MQCHAT_API_PORT")
    api_processes: Positive = var(1, "MQCHAT_API_PROCESSES")  # `mqchat up`; default 2 with MQCHAT_BROKER=nats
    api_instance: int = var(0, "MQCHAT_API_INSTANCE")  # set by `mqchat up`: API process i serves MQCHAT_API_PORT + i
    public_url: str = var("", "MQCHAT_PUBLIC_URL")
    cors_origins: CommaList = var((), "CORS_ORIGINS")
    access_token_ttl: Positive = var(900, "MQCHAT_ACCESS_TOKEN_TTL")
    refresh_token_ttl: int = var(30 * 24 * 3600, "MQCHAT_REFRESH_TOKEN_TTL")
    signup: Literal["open", "closed"] = var("open", "MQCHAT_SIGNUP")
    attachment_max_bytes: int = var(10 * 1024 * 1024, "MQCHAT_ATTACHMENT_MAX_BYTES")
    attachment_types: CommaList = var(DEFAULT_ATTACHMENT_TYPES, "MQCHAT_ATTACHMENT_TYPES")
    embed_origins: CommaList = var((), "MQCHAT_EMBED_ORIGINS")
    # argon2id for new password hashes (existing hashes keep the parameters they were made with);
    # production refuses less than OWASP's minimum (19 MiB, 2 passes)
    argon2_memory_kib: Positive = var(65536, "MQCHAT_ARGON2_MEMORY_KIB")
    argon2_time_cost: Positive = var(3, "MQCHAT_ARGON2_TIME_COST")
    argon2_parallelism: Positive = var(4, "MQCHAT_ARGON2_PARALLELISM")

    # --- chat and tickets
    edit_window_seconds: int = var(900, "MQCHAT_EDIT_WINDOW")
    reactions_per_message: Positive = var(20, "MQCHAT_REACTIONS_PER_MESSAGE")  # different emoji on one message
    agent_capacity: Positive = var(5, "MQCHAT_AGENT_CAPACITY")
    reassign_grace_seconds: int = var(300, "MQCHAT_REASSIGN_GRACE")
    assign_interval_ms: Positive = var(2000, "MQCHAT_ASSIGN_INTERVAL_MS")
    presence_audit_ms: Positive = var(3000, "MQCHAT_PRESENCE_AUDIT_MS")  # NATS: bridge.lost_wills
    escalate_after_seconds: int = var(1800, "MQCHAT_ESCALATE_AFTER")  # a team's default threshold; 0: never
    escalation_interval_ms: Positive = var(30_000, "MQCHAT_ESCALATION_INTERVAL_MS")

    # --- limits
    auth_rate_limit: int = var(20, "MQCHAT_AUTH_RATE_LIMIT")
    account_login_limit: int = var(10, "MQCHAT_ACCOUNT_LOGIN_LIMIT")
    send_rate: float = var(10.0, "MQCHAT_SEND_RATE")
    send_burst: int = var(30, "MQCHAT_SEND_BURST")
    rate_limits: Literal["memory", "store"] = var("memory", "MQCHAT_RATE_LIMITS")  # default "store" when MQCHAT_API_PROCESSES > 1

    # --- memory bounds of long-running processes (entries kept at most)
    conversation_cache_ttl: float = var(30.0, "MQCHAT_CONVERSATION_CACHE_TTL")
    conversation_cache_size: Positive = var(10_000, "MQCHAT_CONVERSATION_CACHE_SIZE")
    rate_limit_keys: Positive = var(100_000, "MQCHAT_RATE_LIMIT_KEYS")
    typing_keys: Positive = var(100_000, "MQCHAT_TYPING_KEYS")
    announced_ids: Positive = var(100_000, "MQCHAT_ANNOUNCED_IDS")
    presence_users: Positive = var(100_000, "MQCHAT_PRESENCE_USERS")
    known_broker_accounts: Positive = var(100_000, "MQCHAT_KNOWN_BROKER_ACCOUNTS")  # Mosquitto mode, ~200 bytes each
    cursor_positions: Positive = var(50_000, "MQCHAT_CURSOR_POSITIONS")  # api: message positions, ~250 bytes each

    # --- mail
    notify_delay_ms: int = var(60_000, "MQCHAT_NOTIFY_DELAY_MS")
    smtp_host: str | None = var(None, "SMTP_HOST")
    smtp_port: int = var(587, "SMTP_PORT")
    smtp_tls: Literal["starttls", "tls", "none"] = var("starttls", "SMTP_TLS")
    smtp_username: str | None = var(None, "SMTP_USERNAME")
    smtp_password: str | None = var(None, "SMTP_PASSWORD")
    smtp_from: str = var("mqchat <noreply@localhost>", "SMTP_FROM")

    # --- push
    vapid_private_key: str | None = var(None, "VAPID_PRIVATE_KEY")
    vapid_public_key: str | None = var(None, "VAPID_PUBLIC_KEY")
    vapid_subject: str = var("mailto:admin@localhost", "VAPID_SUBJECT")

    # --- platform
    platform_jwt_secret: str | None = var(None, "MQCHAT_PLATFORM_JWT_SECRET")
    platform_jwt_public_key: str | None = var(None, "MQCHAT_PLATFORM_JWT_PUBLIC_KEY")
    platform_jwks_url: str | None = var(None, "MQCHAT_PLATFORM_JWKS_URL")
    platform_jwt_issuer: str | None = var(None, "MQCHAT_PLATFORM_JWT_ISSUER")
    platform_jwt_audience: str | None = var(None, "MQCHAT_PLATFORM_JWT_AUDIENCE")
    platform_claim_user_id: str = var("sub", "MQCHAT_PLATFORM_CLAIM_USER_ID")
    platform_claim_role: str = var("role", "MQCHAT_PLATFORM_CLAIM_ROLE")
    platform_claim_name: str = var("name", "MQCHAT_PLATFORM_CLAIM_NAME")
    platform_claim_email: str = var("email", "MQCHAT_PLATFORM_CLAIM_EMAIL")
    platform_role_map: Annotated[tuple[tuple[str, str], ...], NoDecode] = var((), "MQCHAT_PLATFORM_ROLE_MAP")
    platform_rate: float = var(50.0, "MQCHAT_PLATFORM_RATE")
    platform_burst: int = var(100, "MQCHAT_PLATFORM_BURST")

    # --- webhooks
    webhook_timeout_ms: Positive = var(10_000, "MQCHAT_WEBHOOK_TIMEOUT_MS")
    webhook_retry_base_ms: Positive = var(5_000, "MQCHAT_WEBHOOK_RETRY_BASE_MS")
    webhook_max_attempts: Positive = var(12, "MQCHAT_WEBHOOK_MAX_ATTEMPTS")
    webhook_allow_private: bool = var(True, "MQCHAT_WEBHOOK_ALLOW_PRIVATE")  # default: not in production
    webhook_concurrency: Positive = var(4, "MQCHAT_WEBHOOK_CONCURRENCY")
    webhook_disable_after_failures: Positive = var(1_000, "MQCHAT_WEBHOOK_DISABLE_AFTER_FAILURES")
    webhook_disable_after_hours: Positive = var(120, "MQCHAT_WEBHOOK_DISABLE_AFTER_HOURS")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):  # type: ignore[no-untyped-def,override]
        """Only the given values: the environment is read by `load()`, from the mapping it is given."""
        return (init_settings,)

    # --- defaults that depend on another variable

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        bind_host = _given(data, "bind_host")
        if _given(data, "public_host") is None and bind_host and str(bind_host).strip() not in ("127.0.0.1", "0.0.0.0"):
            data["public_host"] = bind_host
        hosts = _given(data, "nats_hosts")
        if isinstance(hosts, str) and _given(data, "nats_nodes") is None and hosts.strip():
            data["nats_nodes"] = len([host for host in hosts.split(",") if host.strip()])
        if str(_given(data, "broker") or "").strip() == "nats":  # a cluster: two of each share the work
            for name in ("api_processes", "bridge_workers"):
                if _given(data, name) is None:
                    data[name] = 2
        processes = str(_given(data, "api_processes") or 1).strip()
        if _given(data, "rate_limits") is None and processes.isdigit() and int(processes) > 1:
            data["rate_limits"] = "store"  # several API processes share their limits through the store
        if _given(data, "webhook_allow_private") is None:
            data["webhook_allow_private"] = str(_given(data, "env") or "development").strip() == "development"
        return data

    # --- how values are written in the environment

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any, info: Any) -> Any:
        return value.strip() if isinstance(value, str) and info.field_name not in VERBATIM else value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("log_level", mode="after")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("cors_origins", "attachment_types", "nats_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return tuple(item.strip() for item in value.split(",") if item.strip()) if isinstance(value, str) else value

    @field_validator("embed_origins", mode="before")
    @classmethod
    def _embed_origins(cls, value: Any) -> Any:
        return _origins("MQCHAT_EMBED_ORIGINS", value) if isinstance(value, str) else value

    @field_validator("platform_role_map", mode="before")
    @classmethod
    def _platform_role_map(cls, value: Any) -> Any:
        return _role_map(value) if isinstance(value, str) else value

    @field_validator("platform_jwt_public_key", mode="before")
    @classmethod
    def _platform_key(cls, value: Any) -> Any:
        return _pem(value) if isinstance(value, str) else value

    @field_validator("nats_hosts", mode="after")
    @classmethod
    def _one_host_per_node(cls, value: tuple[str, ...], info: Any) -> tuple[str, ...]:
        nodes = info.data.get("nats_nodes")
        if value and nodes is not None and len(value) != nodes:
            raise ValueError(f"{len(value)} hosts for MQCHAT_NATS_NODES={nodes} nodes")
        return value

    # --- derived values

    @property
    def api_listen_port(self) -> int:
        """The port this API process serves: MQCHAT_API_PORT plus its instance number under `mqchat up`."""
        return self.api_port + self.api_instance

    @property
    def is_production(self) -> bool:
        """True when running with `MQCHAT_ENV=production`."""
        return self.env == "production"

    @property
    def assign_interval(self) -> float:
        """Seconds between sweeps of the ticket queue (`MQCHAT_ASSIGN_INTERVAL_MS`)."""
        return self.assign_interval_ms / 1000

    @property
    def presence_audit_interval(self) -> float:
        """Seconds between the lead bridge's checks for devices no NATS node holds (`MQCHAT_PRESENCE_AUDIT_MS`)."""
        return self.presence_audit_ms / 1000

    @property
    def escalation_interval(self) -> float:
        """Seconds between escalation checks (`MQCHAT_ESCALATION_INTERVAL_MS`)."""
        return self.escalation_interval_ms / 1000

    @property
    def notify_delay(self) -> float:
        """Seconds a message may stay unread by an offline recipient before a digest (`MQCHAT_NOTIFY_DELAY_MS`)."""
        return self.notify_delay_ms / 1000

    @property
    def platform_tokens_enabled(self) -> bool:
        """True when platform-issued JWTs are accepted (`POST /api/auth/exchange`)."""
        return any((self.platform_jwt_secret, self.platform_jwt_public_key, self.platform_jwks_url))

    @property
    def platform_issuer_key(self) -> str:
        """The namespace of platform user ids: the configured issuer, or "platform" (see core.services.platform_users)."""
        return self.platform_jwt_issuer or "platform"

    @property
    def local_host(self) -> str:
        """Where this machine's own processes reach what listens on MQCHAT_HOST (a wildcard bind: loopback)."""
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "::") else self.bind_host

    @property
    def broker_address(self) -> tuple[str, int]:
        """Where the bridge and the API reach the MQTT broker."""
        if self.broker == "external":
            return self.mqtt_host, self.external_mqtt_port
        return self.local_host, self.mqtt_port

    @property
    def email_enabled(self) -> bool:
        """Email notifications need an SMTP host."""
        return self.smtp_host is not None

    @property
    def push_enabled(self) -> bool:
        """Web push needs a VAPID key pair."""
        return self.vapid_private_key is not None and self.vapid_public_key is not None

    @property
    def api_base_url(self) -> str:
        """Where people reach the API (links in emails)."""
        return self.public_url or f"http://{self.public_host}:{self.api_port}"

    @property
    def ws_url(self) -> str:
        """Where browsers reach the broker over WebSocket (the login's `mqtt.ws_url`)."""
        return f"ws://{self.public_host}:{self.ws_port}/mqtt"

    @property
    def is_lead_bridge(self) -> bool:
        """The bridge worker that aggregates presence and sweeps the ticket queue."""
        return self.bridge_instance == "worker-1"

    @property
    def embedded_store_uri(self) -> str:
        """URI of the embedded nx-27017 store launched by `mqchat up`."""
        return f"mongodb://127.0.0.1:{self.store_port}"

    @property
    def nats_node_hosts(self) -> tuple[str, ...]:
        """Where each NATS node runs (MQCHAT_NATS_HOSTS, or this machine for all of them)."""
        return self.nats_hosts or (self.local_host,) * self.nats_nodes

    @property
    def nats_servers(self) -> list[str]:
        """NATS client URLs of the cluster's nodes (MQCHAT_BROKER=nats): node i on its host, port MQCHAT_NATS_PORT + i."""
        return [f"nats://{host}:{self.nats_port + i}" for i, host in enumerate(self.nats_node_hosts)]

    @property
    def mqtt_endpoints(self) -> list[tuple[str, int]]:
        """Every address where mqchat's services may reach the MQTT broker: each node of a NATS cluster
        (node i on its host, port MQCHAT_MQTT_PORT + i), else the one broker."""
        if self.broker == "nats":
            return [(host, self.mqtt_port + i) for i, host in enumerate(self.nats_node_hosts)]
        return [self.broker_address]

    def with_broker(self, broker: Literal["embedded", "external", "nats"], port: int) -> Settings:
        """A copy of these settings using the given broker kind on 127.0.0.1:`port`."""
        return self.model_copy(update={"broker": broker, "mqtt_host": "127.0.0.1", "external_mqtt_port": port})

    def with_store_uri(self, uri: str) -> Settings:
        """A copy of these settings pointing at the given MongoDB URI."""
        return self.model_copy(update={"mongodb_uri": uri})

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
        """Build settings from `environ` (default: the process environment) over an optional `.env` file.

        Real environment variables win over the file; blank values count as unset. In
        development mode a missing `JWT_SECRET` is generated once and kept in the data
        directory, so tokens survive restarts; production mode refuses a missing or
        placeholder secret. Bad values raise ConfigError naming the variable.
        """
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        try:
            settings = cls(**_Environ(cls, values)())
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None
        _check_platform(settings)
        secret = _resolve_secret(settings)
        _check_password_hashing(settings)
        return settings.model_copy(update={"jwt_secret": secret})


class _Environ(EnvSettingsSource):
    """The variables of a given mapping (not necessarily `os.environ`), blank ones left out."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = {name: value for name, value in environ.items() if value is not None and value.strip()}
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._environ


def _given(data: dict[str, Any], name: str) -> Any:
    """The value given for a field, by its environment variable or its name (None when not given)."""
    alias = Settings.model_fields[name].validation_alias
    return data.get(alias) if isinstance(alias, str) and alias in data else data.get(name)


def _describe(exc: ValidationError) -> str:
    """One line per bad variable: its name, what is wrong, what was given."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"{name}: {error['msg']}, got {error.get('input')!r}")
    return "; ".join(lines)


def _origins(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated web origins, each exactly `scheme://host[:port]` as a browser writes it (no wildcard, no path)."""
    origins = tuple(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise ConfigError(f"{name}: {origin!r} must be an origin such as https://shop.example.com or http://127.0.0.1:8080")
    return origins


def _pem(value: str) -> str | None:
    """`MQCHAT_PLATFORM_JWT_PUBLIC_KEY` is the PEM text itself (`\\n` escapes allowed) or the path of a PEM file."""
    if not value:
        return None
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError("MQCHAT_PLATFORM_JWT_PUBLIC_KEY must be a PEM public key or the path of a PEM file")
    return path.read_text()


def _role_map(raw: str) -> tuple[tuple[str, str], ...]:
    """`buyer=customer,seller=merchant` -> ((platform role, mqchat role), ...); mqchat roles are checked."""
    pairs = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        platform_role, sep, role = (side.strip() for side in item.partition("="))
        if not sep or not platform_role or role not in {r.value for r in Role}:
            raise ConfigError(
                f"MQCHAT_PLATFORM_ROLE_MAP: {item!r} must be <platform role>=<{'|'.join(r.value for r in Role)}>"
            )
        pairs.append((platform_role, role))
    return tuple(pairs)
def _check_platform(settings: Settings) -> None:
    """Production with platform tokens needs an issuer or audience check and a strong shared secret."""
    if not (settings.platform_tokens_enabled and settings.is_production):
        return
    if not (settings.platform_jwt_issuer or settings.platform_jwt_audience):
        raise ConfigError(
            "refusing to start in production: platform tokens are on but neither MQCHAT_PLATFORM_JWT_ISSUER "
            "nor MQCHAT_PLATFORM_JWT_AUDIENCE is set"
        )
    secret = settings.platform_jwt_secret
    if secret is not None and (secret.strip() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH):
        raise ConfigError(
            f"refusing to start in production: MQCHAT_PLATFORM_JWT_SECRET is a placeholder or shorter than "
            f"{MIN_SECRET_LENGTH} characters"
        )


def _check_password_hashing(settings: Settings) -> None:
    """Production hashes passwords at least as hard as OWASP's argon2id minimum."""
    if settings.is_production and (
        settings.argon2_memory_kib < MIN_ARGON2_MEMORY_KIB or settings.argon2_time_cost < MIN_ARGON2_TIME_COST
    ):
        raise ConfigError(
            f"refusing to start in production: MQCHAT_ARGON2_MEMORY_KIB must be at least {MIN_ARGON2_MEMORY_KIB} "
            f"and MQCHAT_ARGON2_TIME_COST at least {MIN_ARGON2_TIME_COST} (OWASP's argon2id minimum)"
        )


def _resolve_secret(settings: Settings) -> str:
    secret = settings.jwt_secret.strip()
    usable = secret not in PLACEHOLDER_SECRETS and len(secret) >= MIN_SECRET_LENGTH
    if settings.is_production:
        if not usable:
            raise ConfigError(
                f"refusing to start in production: JWT_SECRET is missing, a placeholder, or shorter than "
                f"{MIN_SECRET_LENGTH} characters"
            )
        return secret
    if secret:
        return secret
    return _development_secret(settings.data_dir)


def _development_secret(data_dir: Path) -> str:
    """Read the generated development secret from the data dir, creating it atomically on first use."""
    path = data_dir / SECRET_FILE
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_urlsafe(48).encode())
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic: the first component to get here wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
