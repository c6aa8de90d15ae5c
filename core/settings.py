"""Runtime configuration, read from the environment and an optional `.env` file.

Settings are built once by the entry point (`Settings.load()`) and passed into the
factories (`create_app`, `build_broker`, `run_bridge`); nothing reads the
environment at import time.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values

from core.roles import Role

# Secrets that ship in examples or are commonly left in place; refused in production.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "development", "mqchat"})
MIN_SECRET_LENGTH = 32
SECRET_FILE = "jwt_secret"


DEFAULT_ATTACHMENT_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
# A web origin as browsers serialize it: scheme, host, optional port (it goes into a CSP header).
ORIGIN = re.compile(r"https?://([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


class ConfigError(RuntimeError):
    """The configuration cannot be used (for example a default secret in production)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a component needs to know about its environment."""

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    mongodb_uri: str | None = None
    db_name: str = "mqchat"
    store_port: int = 27017
    jwt_secret: str = ""
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    bind_host: str = "127.0.0.1"
    public_host: str = "localhost"
    api_port: int = 8000
    mqtt_port: int = 1883
    ws_port: int = 9001
    broker: Literal["embedded", "external"] = "embedded"
    mqtt_host: str = "127.0.0.1"
    external_mqtt_port: int = 1883
    connect_timeout_ms: int = 10_000
    pending_connections_per_address: int = 64
    cors_origins: tuple[str, ...] = ()
    auth_rate_limit: int = 20
    account_login_limit: int = 10
    send_rate: float = 10.0
    send_burst: int = 30
    edit_window_seconds: int = 900
    agent_capacity: int = 5
    reassign_grace_seconds: int = 300
    assign_interval: float = 2.0
    bridge_workers: int = 1
    bridge_instance: str = "worker-1"
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachment_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES
    notify_delay: float = 60.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "mqchat <noreply@localhost>"
    vapid_private_key: str | None = None
    vapid_public_key: str | None = None
    vapid_subject: str = "mailto:admin@localhost"
    public_url: str = ""
    log_level: str = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"
    signup: Literal["open", "closed"] = "open"
    platform_jwt_secret: str | None = None
    platform_jwt_public_key: str | None = None
    platform_jwks_url: str | None = None
    platform_jwt_issuer: str | None = None
    platform_jwt_audience: str | None = None
    platform_claim_user_id: str = "sub"
    platform_claim_role: str = "role"
    platform_claim_name: str = "name"
    platform_claim_email: str = "email"
    platform_role_map: tuple[tuple[str, str], ...] = ()
    platform_rate: float = 50.0
    platform_burst: int = 100
    embed_origins: tuple[str, ...] = ()
    webhook_timeout_ms: int = 10_000
    webhook_retry_base_ms: int = 5_000
    webhook_max_attempts: int = 12
    webhook_allow_private: bool = True
    webhook_concurrency: int = 4
    webhook_disable_after_failures: int = 1_000
    webhook_disable_after_hours: int = 120

    @property
    def is_production(self) -> bool:
        """True when running with `MQCHAT_ENV=production`."""
        return self.env == "production"

    @property
    def platform_tokens_enabled(self) -> bool:
        """True when platform-issued JWTs are accepted (`POST /api/auth/exchange`)."""
        return any((self.platform_jwt_secret, self.platform_jwt_public_key, self.platform_jwks_url))

    @property
    def platform_issuer_key(self) -> str:
        """The namespace of platform user ids: the configured issuer, or "platform" (see core.services.platform_users)."""
        return self.platform_jwt_issuer or "platform"

    @property
    def broker_address(self) -> tuple[str, int]:
        """Where the bridge and the API reach the MQTT broker."""
        if self.broker == "external":
            return self.mqtt_host, self.external_mqtt_port
        return ("127.0.0.1" if self.bind_host in ("0.0.0.0", "::") else self.bind_host), self.mqtt_port

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

    def with_broker(self, broker: Literal["embedded", "external"], port: int) -> Settings:
        """A copy of these settings using the given broker kind on 127.0.0.1:`port`."""
        return replace(self, broker=broker, mqtt_host="127.0.0.1", external_mqtt_port=port)

    def with_store_uri(self, uri: str) -> Settings:
        """A copy of these settings pointing at the given MongoDB URI."""
        return replace(self, mongodb_uri=uri)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
        """Build settings from `environ` (default: the process environment) over an optional `.env` file.

        Real environment variables win over the file. In development mode a missing
        `JWT_SECRET` is generated once and kept in the data directory, so tokens
        survive restarts; production mode refuses a missing or placeholder secret.
        """
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        def get(name: str, default: str) -> str:
            return values.get(name, default).strip() or default

        def get_int(name: str, default: int) -> int:
            raw = get(name, str(default))
            try:
                return int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None

        def get_float(name: str, default: float) -> float:
            raw = get(name, str(default))
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None

        env = get("MQCHAT_ENV", "development")
        if env not in ("development", "production"):
            raise ConfigError(f"MQCHAT_ENV must be 'development' or 'production', got {env!r}")
        broker = get("MQCHAT_BROKER", "embedded")
        if broker not in ("embedded", "external"):
            raise ConfigError(f"MQCHAT_BROKER must be 'embedded' or 'external', got {broker!r}")
        data_dir = Path(get("MQCHAT_DATA_DIR", "data")).expanduser().resolve()
        bind_host = get("MQCHAT_HOST", "127.0.0.1")
        settings = cls(
            env=env,  # type: ignore[arg-type]
            data_dir=data_dir,
            mongodb_uri=values.get("MONGODB_URI") or None,
            db_name=get("MQCHAT_DB_NAME", "mqchat"),
            store_port=get_int("MQCHAT_STORE_PORT", 27017),
            jwt_secret=values.get("JWT_SECRET", ""),
            access_token_ttl=get_int("MQCHAT_ACCESS_TOKEN_TTL", 900),
            refresh_token_ttl=get_int("MQCHAT_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
            bind_host=bind_host,
            public_host=get("MQCHAT_PUBLIC_HOST", "localhost" if bind_host in ("127.0.0.1", "0.0.0.0") else bind_host),
            api_port=get_int("MQCHAT_API_PORT", 8000),
            mqtt_port=get_int("MQCHAT_MQTT_PORT", 1883),
            ws_port=get_int("MQCHAT_WS_PORT", 9001),
            broker=broker,  # type: ignore[arg-type]
            mqtt_host=get("MQTT_HOST", "127.0.0.1"),
            external_mqtt_port=get_int("MQTT_PORT", 1883),
            connect_timeout_ms=get_int("MQCHAT_CONNECT_TIMEOUT_MS", 10_000),
            pending_connections_per_address=get_int("MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS", 64),
            cors_origins=tuple(o.strip() for o in get("CORS_ORIGINS", "").split(",") if o.strip()),
            auth_rate_limit=get_int("MQCHAT_AUTH_RATE_LIMIT", 20),
            account_login_limit=get_int("MQCHAT_ACCOUNT_LOGIN_LIMIT", 10),
            send_rate=get_int("MQCHAT_SEND_RATE", 10),
            send_burst=get_int("MQCHAT_SEND_BURST", 30),
            edit_window_seconds=get_int("MQCHAT_EDIT_WINDOW", 900),
            agent_capacity=get_int("MQCHAT_AGENT_CAPACITY", 5),
            reassign_grace_seconds=get_int("MQCHAT_REASSIGN_GRACE", 300),
            assign_interval=get_int("MQCHAT_ASSIGN_INTERVAL_MS", 2000) / 1000,
            bridge_workers=get_int("MQCHAT_BRIDGE_WORKERS", 1),
            bridge_instance=get("MQCHAT_BRIDGE_INSTANCE", "worker-1"),
            attachment_max_bytes=get_int("MQCHAT_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024),
            attachment_types=tuple(
                t.strip() for t in get("MQCHAT_ATTACHMENT_TYPES", ",".join(DEFAULT_ATTACHMENT_TYPES)).split(",") if t.strip()
            ),
            notify_delay=get_int("MQCHAT_NOTIFY_DELAY_MS", 60_000) / 1000,
            smtp_host=values.get("SMTP_HOST") or None,
            smtp_port=get_int("SMTP_PORT", 587),
            smtp_tls=_choice("SMTP_TLS", get("SMTP_TLS", "starttls"), ("starttls", "tls", "none")),  # type: ignore[arg-type]
            smtp_username=values.get("SMTP_USERNAME") or None,
            smtp_password=values.get("SMTP_PASSWORD") or None,
            smtp_from=get("SMTP_FROM", "mqchat <noreply@localhost>"),
            vapid_private_key=values.get("VAPID_PRIVATE_KEY") or None,
            vapid_public_key=values.get("VAPID_PUBLIC_KEY") or None,
            vapid_subject=get("VAPID_SUBJECT", "mailto:admin@localhost"),
            public_url=get("MQCHAT_PUBLIC_URL", ""),
            log_level=get("MQCHAT_LOG_LEVEL", "INFO").upper(),
            log_format=_choice("MQCHAT_LOG_FORMAT", get("MQCHAT_LOG_FORMAT", "auto").lower(), ("auto", "console", "json")),  # type: ignore[arg-type]
            signup=_choice("MQCHAT_SIGNUP", get("MQCHAT_SIGNUP", "open"), ("open", "closed")),  # type: ignore[arg-type]
            platform_jwt_secret=values.get("MQCHAT_PLATFORM_JWT_SECRET") or None,
            platform_jwt_public_key=_pem(values.get("MQCHAT_PLATFORM_JWT_PUBLIC_KEY") or None),
            platform_jwks_url=values.get("MQCHAT_PLATFORM_JWKS_URL") or None,
            platform_jwt_issuer=values.get("MQCHAT_PLATFORM_JWT_ISSUER") or None,
            platform_jwt_audience=values.get("MQCHAT_PLATFORM_JWT_AUDIENCE") or None,
            platform_claim_user_id=get("MQCHAT_PLATFORM_CLAIM_USER_ID", "sub"),
            platform_claim_role=get("MQCHAT_PLATFORM_CLAIM_ROLE", "role"),
            platform_claim_name=get("MQCHAT_PLATFORM_CLAIM_NAME", "name"),
            platform_claim_email=get("MQCHAT_PLATFORM_CLAIM_EMAIL", "email"),
            platform_role_map=_role_map(get("MQCHAT_PLATFORM_ROLE_MAP", "")),
            platform_rate=get_float("MQCHAT_PLATFORM_RATE", 50.0),
            platform_burst=get_int("MQCHAT_PLATFORM_BURST", 100),
            embed_origins=_origins("MQCHAT_EMBED_ORIGINS", get("MQCHAT_EMBED_ORIGINS", "")),
            webhook_timeout_ms=get_int("MQCHAT_WEBHOOK_TIMEOUT_MS", 10_000),
            webhook_retry_base_ms=get_int("MQCHAT_WEBHOOK_RETRY_BASE_MS", 5_000),
            webhook_max_attempts=get_int("MQCHAT_WEBHOOK_MAX_ATTEMPTS", 12),
            webhook_allow_private=_flag(
                "MQCHAT_WEBHOOK_ALLOW_PRIVATE", get("MQCHAT_WEBHOOK_ALLOW_PRIVATE", "true" if env == "development" else "false")
            ),
            webhook_concurrency=get_int("MQCHAT_WEBHOOK_CONCURRENCY", 4),
            webhook_disable_after_failures=get_int("MQCHAT_WEBHOOK_DISABLE_AFTER_FAILURES", 1_000),
            webhook_disable_after_hours=get_int("MQCHAT_WEBHOOK_DISABLE_AFTER_HOURS", 120),
        )
        if settings.access_token_ttl <= 0:
            raise ConfigError("MQCHAT_ACCESS_TOKEN_TTL must be positive")
        if min(settings.connect_timeout_ms, settings.pending_connections_per_address) <= 0:
            raise ConfigError("MQCHAT_CONNECT_TIMEOUT_MS and MQCHAT_PENDING_CONNECTIONS_PER_ADDRESS must be positive")
        if min(settings.agent_capacity, settings.assign_interval, settings.bridge_workers) <= 0:
            raise ConfigError("MQCHAT_AGENT_CAPACITY, MQCHAT_ASSIGN_INTERVAL_MS and MQCHAT_BRIDGE_WORKERS must be positive")
        if min(settings.webhook_timeout_ms, settings.webhook_retry_base_ms, settings.webhook_max_attempts,
               settings.webhook_concurrency, settings.webhook_disable_after_failures, settings.webhook_disable_after_hours) <= 0:
            raise ConfigError("MQCHAT_WEBHOOK_* durations and counts must be positive")
        _check_platform(settings)
        return replace(settings, jwt_secret=_resolve_secret(settings))


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _origins(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated web origins, each exactly `scheme://host[:port]` as a browser writes it (no wildcard, no path)."""
    origins = tuple(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise ConfigError(f"{name}: {origin!r} must be an origin such as https://shop.example.com or http://127.0.0.1:8080")
    return origins


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return lowered in ("true", "1", "yes")


def _pem(value: str | None) -> str | None:
    """`MQCHAT_PLATFORM_JWT_PUBLIC_KEY` is the PEM text itself (`\\n` escapes allowed) or the path of a PEM file."""
    if value is None:
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
