"""`/api/users` and `/api/admin/users`: finding people to talk to, and staff accounts."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from api.limits import RequestLimits
from api.publisher import EventPublisher
from core.documents import User
from core.errors import Forbidden, NotFound
from core.payloads import (
    CreateUserRequest,
    UserEnvelope,
    UserList,
    UserOut,
    UserStatusRequest,
)
from core.roles import Role
from core.services import sessions, users


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/")
    async def list_users(
        self,
        current_user: NamedDependency[User],
        limits: NamedDependency[RequestLimits],
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        role: FromQuery[Role | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 20,
    ) -> UserList:
        """Active users whose username (admins: or email) starts with `q`; `limit` is clamped to 100; rate limited per user."""
        limits.check(limits.search, str(current_user.id), "user searches")
        found = await users.search_users(q, role, limit, by_email=current_user.role is Role.ADMIN)
        return UserList(items=[users.user_out(user, viewer=current_user) for user in found])

    @get("/{user_id:str}")
    async def get_user(self, user_id: FromPath[str], current_user: NamedDependency[User]) -> UserOut:
        """One user."""
        return users.user_out(await users.get_active_user(user_id), viewer=current_user)


class AdminUsersController(Controller):
    path = "/api/admin/users"
    tags = ["admin"]

    @post("/", status_code=HTTP_201_CREATED)
    async def create_user(self, data: JSONBody[CreateUserRequest], current_user: NamedDependency[User]) -> UserEnvelope:
        """Create a user of any role (admin only)."""
        user = await users.create_user(data.email, data.username, data.password, data.role)
        return UserEnvelope(user=users.user_out(user, viewer=current_user))

    @patch("/{user_id:str}")
    async def set_status(
        self, user_id: FromPath[str], data: JSONBody[UserStatusRequest], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher],
    ) -> UserEnvelope:  # fmt: skip
        """Disable (or re-enable) an account; a disabled user is refused by the API and the broker at once."""
        target = await users.find_user(user_id)
        if target is None:
            raise NotFound("user not found")
        if target.id == current_user.id:
            raise Forbidden("admins cannot disable themselves")
        await users.set_active(target, data.active)
        target = await publisher.publish_and_return(await sessions.revoke_sessions(target))
        return UserEnvelope(user=users.user_out(target, viewer=current_user))
