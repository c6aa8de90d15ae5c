"""`/api/auth`: signup, login and the current user."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from core.broker_rights import BrokerRights
from core.documents import User
from core.errors import Forbidden
from core.payloads import (
    AuthResponse,
    LoginRequest,
    SignupRequest,
    UpdateMeRequest,
    UserOut,
)
from core.roles import SELF_SIGNUP_ROLES, Role
from core.services import users
from core.services.sessions import start_session
from core.settings import Settings


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/signup", status_code=HTTP_201_CREATED)
    async def signup(
        self, data: JSONBody[SignupRequest], settings: NamedDependency[Settings], rights: NamedDependency[BrokerRights]
    ) -> AuthResponse:
        """Create a customer, merchant or designer account and sign it in."""
        role = data.role or Role.CUSTOMER
        if role not in SELF_SIGNUP_ROLES:
            raise Forbidden("agents and admins are created by an admin")
        user = await users.create_user(data.email, data.username, data.password, role)
        await rights.ensure_user(str(user.id), user.role)
        return start_session(settings, user)

    @post("/login", status_code=HTTP_200_OK)
    async def login(
        self, data: JSONBody[LoginRequest], settings: NamedDependency[Settings], rights: NamedDependency[BrokerRights]
    ) -> AuthResponse:
        """Exchange email and password for an access token and the MQTT connection block."""
        user = await users.check_credentials(data.email, data.password)
        await rights.ensure_user(str(user.id), user.role)
        return start_session(settings, user)

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
