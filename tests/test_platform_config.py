"""Platform-token settings: what production refuses, malformed maps and keys, an unreachable JWKS."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from core.errors import Unavailable
from core.platform_tokens import PlatformTokenVerifier
from core.settings import ConfigError, Settings
from mqchat.store import free_port

STRONG = "p" * 40


def load(tmp_path: Path, **env: str) -> Settings:
    return Settings.load({"MQCHAT_DATA_DIR": str(tmp_path), "JWT_SECRET": "j" * 40, **env}, env_file=None)


def test_production_wants_an_issuer_or_audience_and_a_strong_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither MQCHAT_PLATFORM_JWT_ISSUER"):
        load(tmp_path, MQCHAT_ENV="production", MQCHAT_PLATFORM_JWT_SECRET=STRONG)
    with pytest.raises(ConfigError, match="MQCHAT_PLATFORM_JWT_SECRET"):
        load(tmp_path, MQCHAT_ENV="production", MQCHAT_PLATFORM_JWT_SECRET="short", MQCHAT_PLATFORM_JWT_AUDIENCE="mqchat")
    settings = load(tmp_path, MQCHAT_ENV="production", MQCHAT_PLATFORM_JWT_SECRET=STRONG, MQCHAT_PLATFORM_JWT_ISSUER="https://shop")
    assert settings.platform_tokens_enabled and settings.platform_issuer_key == "https://shop"
    assert not load(tmp_path, MQCHAT_ENV="production").platform_tokens_enabled, "off unless a key is set"


@pytest.mark.parametrize("role_map", ["buyer", "buyer=owner", "=customer", "buyer=customer,seller"])
def test_a_malformed_role_map_is_refused(tmp_path: Path, role_map: str) -> None:
    with pytest.raises(ConfigError, match="MQCHAT_PLATFORM_ROLE_MAP"):
        load(tmp_path, MQCHAT_PLATFORM_ROLE_MAP=role_map)


def test_signup_and_public_key_values_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MQCHAT_SIGNUP"):
        load(tmp_path, MQCHAT_SIGNUP="sometimes")
    with pytest.raises(ConfigError, match="PEM"):
        load(tmp_path, MQCHAT_PLATFORM_JWT_PUBLIC_KEY=str(tmp_path / "missing.pem"))
    broken = load(tmp_path, MQCHAT_PLATFORM_JWT_PUBLIC_KEY="-----BEGIN PUBLIC KEY-----\\nnot a key\\n-----END PUBLIC KEY-----")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        PlatformTokenVerifier(broken)


async def test_an_unreachable_jwks_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    settings = load(tmp_path, MQCHAT_PLATFORM_JWKS_URL=f"http://127.0.0.1:{free_port()}/jwks.json")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "u1", "role": "customer", "exp": int(time.time()) + 60}, key, algorithm="RS256", headers={"kid": "k"})
    with pytest.raises(Unavailable):
        await PlatformTokenVerifier(settings).verify(token)
