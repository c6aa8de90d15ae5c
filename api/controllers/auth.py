"""`/api/auth`: signup, login, refresh, logout, password change and the current user."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.limits import RequestLimits
from api.publisher import EventPublisher
from core.broker_rights import BrokerRights
from core.documents import User
from core.errors import Forbidden, Unauthorized
from core.payloads import (
    AuthResponse,
    ExchangeRequest,
    LoginRequest,
    PasswordChangeRequest,
    RefreshRequest,
    SignupRequest,
    UpdateMeRequest,
    UserOut,
)
from core.platform_tokens import PlatformTokenVerifier
from core.roles import SELF_SIGNUP_ROLES, Role
from core.security import verify_password
from core.services import platform_users, sessions, users
from core.settings import Settings


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/signup", status_code=HTTP_201_CREATED)
    async def signup(
        self, data: JSONBody[SignupRequest], settings: NamedDependency[Settings], rights: NamedDependency[BrokerRights]
    ) -> AuthResponse:
        """Create a customer, merchant or designer account and sign it in (unless `MQCHAT_SIGNUP=closed`)."""
        if settings.signup == "closed":
            raise Forbidden("sign-up is closed: accounts come from the platform (POST /api/auth/exchange)")
        role = data.role or Role.CUSTOMER
        if role not in SELF_SIGNUP_ROLES:
            raise Forbidden("agents and admins are created by an admin")
        user = await users.create_user(data.email, data.username, data.password, role)
        return await sessions.signed_in(settings, rights, user)

    @post("/login", status_code=HTTP_200_OK)
    async def login(
        self, data: JSONBody[LoginRequest], settings: NamedDependency[Settings], rights: NamedDependency[BrokerRights],
        limits: NamedDependency[RequestLimits],
    ) -> AuthResponse:  # fmt: skip
        """Exchange email and password for tokens and the MQTT connection block (attempts are limited per account)."""
        await limits.check(limits.login, users.normalize_email(data.email), "login attempts for this account")
        user = await users.check_credentials(data.email, data.password)
        return await sessions.signed_in(settings, rights, user)

    @post("/exchange", status_code=HTTP_200_OK)
    async def exchange(
        self, data: JSONBody[ExchangeRequest], settings: NamedDependency[Settings],
        rights: NamedDependency[BrokerRights], platform_tokens: NamedDependency[PlatformTokenVerifier],
    ) -> AuthResponse:  # fmt: skip
        """Exchange a token issued by the host platform for mqchat's tokens, exactly like a login.

        The platform user's account is created on first sight and its name, email and
        role are refreshed from the token's claims every time (docs/integration.md).
        """
        identity = await platform_tokens.verify(data.token)
        try:
            user, _ = await platform_users.upsert_platform_user(
                identity.issuer, identity.external_id, identity.name, identity.email, identity.role
            )
        except platform_users.AccountDisabled as exc:
            raise Unauthorized(exc.message) from None
        return await sessions.signed_in(settings, rights, user)

    @post("/refresh", status_code=HTTP_200_OK)
    async def refresh(
        self, data: JSONBody[RefreshRequest], settings: NamedDependency[Settings], rights: NamedDependency[BrokerRights],
        publisher: NamedDependency[EventPublisher],
    ) -> AuthResponse:  # fmt: skip
        """Exchange a refresh token (used once) for new tokens; a replayed one signs its user out everywhere."""
        try:
            user, response = await sessions.refresh_session(settings, data.refresh_token)
        except sessions.RefreshTokenReplayed as replay:
            await publisher.publish(replay.deliveries)
            raise
        await rights.ensure_user(str(user.id), user.role, user.token_version)
        return response

    @post("/logout", status_code=HTTP_204_NO_CONTENT, security=[{"BearerToken": []}])
    async def logout(self, current_user: NamedDependency[User], publisher: NamedDependency[EventPublisher]) -> None:
        """Sign out everywhere: every token and refresh token stops working and live MQTT connections are cut."""
        await publisher.publish_and_return(await sessions.revoke_sessions(current_user))

    @post("/password", status_code=HTTP_200_OK, security=[{"BearerToken": []}])
    async def change_password(
        self, data: JSONBody[PasswordChangeRequest], current_user: NamedDependency[User],
        settings: NamedDependency[Settings], rights: NamedDependency[BrokerRights],
        publisher: NamedDependency[EventPublisher],
    ) -> AuthResponse:  # fmt: skip
        """Change one's password; every other session ends, this one gets fresh tokens."""
        if current_user.is_platform_user:
            raise Forbidden("this account signs in through the platform and has no password here")
        if not await verify_password(data.current_password, current_user.password_hash):
            raise Unauthorized("the current password is wrong")
        await users.set_password(current_user, data.new_password)
        user = await publisher.publish_and_return(await sessions.revoke_sessions(current_user))
        return await sessions.signed_in(settings, rights, user)

    @get("/me", security=[{"BearerToken": []}])
    async def me(self, current_user: NamedDependency[User]) -> UserOut:
        """The signed-in user, with their preferences."""
        return users.user_out(current_user, viewer=current_user)

    @patch("/me", security=[{"BearerToken": []}])
    async def update_me(self, data: JSONBody[UpdateMeRequest], current_user: NamedDependency[User]) -> UserOut:
        """Change one's display name or preferences (`{"preferences": {"email_notifications": false}}`)."""
        email = data.preferences.email_notifications if data.preferences else None
        updated = await users.update_profile(current_user, data.username, email)
        return users.user_out(updated, viewer=updated)
