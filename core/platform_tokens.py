"""Platform-issued JWTs: verify a host platform's token and read whom it names.

Keys (any combination, from `MQCHAT_PLATFORM_*`): a shared HMAC secret
(HS256/384/512), a PEM public key (RSA, RSA-PSS, EC or Ed25519/Ed448), and a JWKS
URL, fetched by pyjwt's PyJWKClient, cached, and fetched again when a token names
an unknown `kid` (at most once a second), so the platform rotates keys without a
restart. The token's algorithm picks the key: an HS token is checked only against
the secret, any other only against public keys. So a public key is never used as
an HMAC secret (algorithm confusion), and `alg: none` is never accepted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from core import topics
from core.errors import Forbidden, InvalidInput, Unauthorized, Unavailable
from core.roles import Role
from core.services.users import display_name
from core.settings import ConfigError, Settings

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
JWKS_CACHE_SECONDS = 300
JWKS_REFRESH_COOLDOWN = 1.0
JWKS_TIMEOUT = 5.0
MAX_NAME = 64
# Without MQCHAT_PLATFORM_ROLE_MAP a platform role equal to an mqchat role maps to itself; admin never does.
DEFAULT_ROLE_MAP = {role.value: role for role in Role if role is not Role.ADMIN}


class InvalidPlatformToken(Unauthorized):
    """The platform token is refused; the message says why (safe to show: it names no secret)."""


@dataclass(frozen=True, slots=True)
class PlatformIdentity:
    """Who a verified platform token names, in mqchat's terms."""

    issuer: str
    external_id: str
    role: Role
    name: str
    email: str | None


def _claimed_name(claim: object, fallback: str) -> str:
    """The name claim when it is a usable display name (core.services.users.display_name), else `fallback`."""
    if isinstance(claim, str):
        try:
            return display_name(claim[:MAX_NAME])
        except InvalidInput:
            pass
    return fallback[:MAX_NAME]


class PlatformTokenVerifier:
    """Verifies platform JWTs with the keys configured in `settings` (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._secret = settings.platform_jwt_secret
        self._public_key = _load_public_key(settings.platform_jwt_public_key)
        self._jwks = (
            jwt.PyJWKClient(
                # the key set is cached, not single keys: a key the platform retired stops working
                # as soon as the set is fetched again
                settings.platform_jwks_url, cache_keys=False, lifespan=JWKS_CACHE_SECONDS,
                timeout=JWKS_TIMEOUT, cooldown_duration=JWKS_REFRESH_COOLDOWN,
            )  # fmt: skip
            if settings.platform_jwks_url
            else None
        )
        self._roles: dict[str, Role] = (
            {platform: Role(role) for platform, role in settings.platform_role_map}
            if settings.platform_role_map
            else DEFAULT_ROLE_MAP
        )

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured."""
        return self._settings.platform_tokens_enabled

    async def verify(self, token: str) -> PlatformIdentity:
        """The identity in a valid token; InvalidPlatformToken (401) or Forbidden (403, unmapped role) otherwise."""
        if not self.enabled:
            raise Forbidden("platform tokens are not enabled on this server")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidPlatformToken("malformed token") from None
        algorithm = header.get("alg")
        key = await self._key_for(algorithm, header.get("kid"))
        claims = self._decode(token, key, algorithm)
        return self._identity(claims)

    async def _key_for(self, algorithm: object, kid: object) -> Any:
        if algorithm in HMAC_ALGORITHMS:
            if self._secret is None:
                raise InvalidPlatformToken(f"algorithm {algorithm} is not accepted (no shared secret configured)")
            return self._secret
        if algorithm not in PUBLIC_KEY_ALGORITHMS:
            raise InvalidPlatformToken(f"algorithm {algorithm!r} is not accepted")
        if self._jwks is not None and (isinstance(kid, str) or self._public_key is None):
            return await self._jwks_key(kid)
        if self._public_key is None:
            raise InvalidPlatformToken(f"algorithm {algorithm} is not accepted (no public key configured)")
        return self._public_key

    async def _jwks_key(self, kid: object) -> Any:
        assert self._jwks is not None
        jwks = self._jwks
        try:
            if isinstance(kid, str):
                return (await asyncio.to_thread(jwks.get_signing_key, kid)).key
            keys = await asyncio.to_thread(jwks.get_signing_keys)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, ValueError):
            raise Unavailable("the platform's signing keys cannot be fetched, retry later") from None
        except jwt.PyJWKClientError:
            raise InvalidPlatformToken("unknown signing key (kid)") from None
        if len(keys) != 1:
            raise InvalidPlatformToken("the token names no key (kid) and the key set has several")
        return keys[0].key

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        settings = self._settings
        required = ["exp", *(["iss"] if settings.platform_jwt_issuer else []), *(["aud"] if settings.platform_jwt_audience else [])]
        try:
            return jwt.decode(
                token, key, algorithms=[algorithm], issuer=settings.platform_jwt_issuer,
                audience=settings.platform_jwt_audience,
                options={"require": required, "verify_aud": settings.platform_jwt_audience is not None},
            )  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise InvalidPlatformToken("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidPlatformToken("token not yet valid") from None
        except jwt.InvalidIssuerError:
            raise InvalidPlatformToken("wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise InvalidPlatformToken("wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidPlatformToken(f"missing claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise InvalidPlatformToken("bad signature") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidPlatformToken("invalid token") from None

    def _identity(self, claims: dict[str, Any]) -> PlatformIdentity:
        settings = self._settings
        user_claim = settings.platform_claim_user_id
        raw_id = claims.get(user_claim)
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            raw_id = str(raw_id)
        if raw_id is None:
            raise InvalidPlatformToken(f"missing claim {user_claim!r}")
        if not isinstance(raw_id, str) or not topics.is_valid_external_id(raw_id):
            raise InvalidPlatformToken(f"claim {user_claim!r} is not a usable user id")
        email = claims.get(settings.platform_claim_email)
        return PlatformIdentity(
            issuer=settings.platform_issuer_key,
            external_id=raw_id,
            role=self.role_for(claims.get(settings.platform_claim_role)),
            name=_claimed_name(claims.get(settings.platform_claim_name), raw_id),
            email=email.strip().lower() if isinstance(email, str) and "@" in email and len(email) <= 254 else None,
        )

    def role_for(self, platform_role: object) -> Role:
        """The mqchat role of a platform role (a string, or the first mapped one of a list); Forbidden if unmapped."""
        candidates = platform_role if isinstance(platform_role, list) else [platform_role]
        for candidate in candidates:
            if isinstance(candidate, str) and candidate in self._roles:
                return self._roles[candidate]
        if "*" in self._roles:
            return self._roles["*"]
        raise Forbidden(f"platform role {platform_role!r} is not mapped to an mqchat role")


def _load_public_key(pem: str | None) -> Any:
    if pem is None:
        return None
    try:
        return load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ConfigError(f"MQCHAT_PLATFORM_JWT_PUBLIC_KEY is not a PEM public key: {exc}") from None
