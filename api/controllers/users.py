"""`/api/users` and `/api/admin/users`: finding people to talk to; user management and data rights for admins."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, MediaType, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.limits import RequestLimits
from api.publisher import EventPublisher
from core.admin_payloads import AdminUserList, AdminUserOut, ErasureOut, UserChangeRequest
from core.documents import User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.payloads import (
    CreateUserRequest,
    UserEnvelope,
    UserList,
    UserOut,
)
from core.roles import Role
from core.services import audit, data_rights, sessions, users
from core.services.tickets import Limits
from core.settings import Settings
from core.topics import is_object_id


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
        await limits.check(limits.search, str(current_user.id), "user searches")
        found = await users.search_users(q, role, limit, by_email=current_user.role is Role.ADMIN)
        return UserList(items=[users.user_out(user, viewer=current_user) for user in found])

    @get("/{user_id:str}")
    async def get_user(self, user_id: FromPath[str], current_user: NamedDependency[User]) -> UserOut:
        """One user, also a deactivated or erased one (`active: false`): their name still shows in others' history."""
        user = await users.find_user(user_id)
        if user is None:
            raise NotFound("user not found")
        return users.user_out(user, viewer=current_user)


class AdminUsersController(Controller):
    path = "/api/admin/users"
    tags = ["admin"]

    @get("/")
    async def find_users(
        self,
        current_user: NamedDependency[User],
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        role: FromQuery[Role | None] = None,
        active: FromQuery[bool | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
    ) -> AdminUserList:
        """Users whose username or email starts with `q` (or whose id it is), deactivated and erased ones too (`active` filters); at most 100."""
        if q and is_object_id(q.strip()):  # an id from the audit log or a report
            found = [user] if (user := await users.find_user(q.strip())) is not None else []
        else:
            found = await users.search_users(q, role, limit, by_email=True, active=active)
        return AdminUserList(items=[_admin_view(user, current_user) for user in found])

    @post("/", status_code=HTTP_201_CREATED)
    async def create_user(self, data: JSONBody[CreateUserRequest], current_user: NamedDependency[User]) -> UserEnvelope:
        """Create a user of any role (admin only)."""
        user = await users.create_user(data.email, data.username, data.password, data.role)
        await audit.record(str(current_user.id), "user.created", "user", str(user.id), role=user.role.value)
        return UserEnvelope(user=users.user_out(user, viewer=current_user))

    @patch("/{user_id:str}")
    async def change(
        self, user_id: FromPath[str], data: JSONBody[UserChangeRequest], current_user: NamedDependency[User],
        publisher: NamedDependency[EventPublisher],
    ) -> UserEnvelope:  # fmt: skip
        """Deactivate or reactivate an account, or change its role: the user is signed out everywhere at once
        (tokens revoked, live connections cut on the broker), and the change is audited."""
        if data.active is None and data.role is None:
            raise InvalidInput("give active and/or role")
        target = await _target(user_id, current_user, "change their own account here")
        if target.erased_at is not None:
            raise Conflict("an erased account cannot be changed")
        before_active, before_role = target.active, target.role
        await users.set_access(target, data.active, data.role)
        target = await publisher.publish_and_return(await sessions.revoke_sessions(target))
        actor = str(current_user.id)
        if data.active is not None and data.active != before_active:
            await audit.record(actor, "user.reactivated" if data.active else "user.deactivated", "user", user_id)
        if data.role is not None and data.role != before_role:
            await audit.record(actor, "user.role_changed", "user", user_id, **{"from": before_role.value, "to": data.role.value})
        return UserEnvelope(user=users.user_out(target, viewer=current_user))

    @get("/{user_id:str}/export", media_type=MediaType.JSON)
    async def export(self, user_id: FromPath[str], current_user: NamedDependency[User]) -> Stream:
        """Everything stored about the user as one JSON document (a download), audited."""
        target = await users.find_user(user_id)
        if target is None:
            raise NotFound("user not found")
        await audit.record(str(current_user.id), "user.exported", "user", user_id)
        return Stream(
            data_rights.export_chunks(target),
            media_type=MediaType.JSON,
            headers={"Content-Disposition": f'attachment; filename="mqchat-user-{user_id}.json"', "Cache-Control": "no-store"},
        )

    @delete("/{user_id:str}", status_code=HTTP_200_OK)
    async def erase(
        self, user_id: FromPath[str], current_user: NamedDependency[User], publisher: NamedDependency[EventPublisher],
        settings: NamedDependency[Settings],
    ) -> ErasureOut:  # fmt: skip
        """Erase the user: anonymised profile, message tombstones, uploads deleted, signed out and locked out everywhere;
        an agent's tickets go back to the queue."""
        target = await _target(user_id, current_user, "erase themselves")
        erased = await data_rights.erase_user(target, Limits.from_settings(settings))
        await publisher.publish(erased.deliveries)
        counts = {"messages": erased.messages, "attachments": erased.attachments, "tickets": erased.tickets}
        await audit.record(str(current_user.id), "user.erased", "user", user_id, **{k: str(v) for k, v in counts.items()})
        return ErasureOut(user=_admin_view(erased.user, current_user), **counts)


async def _target(user_id: str, current_user: User, refused: str) -> User:
    target = await users.find_user(user_id)
    if target is None:
        raise NotFound("user not found")
    if target.id == current_user.id:
        raise Forbidden(f"admins cannot {refused}")
    return target


def _admin_view(user: User, viewer: User) -> AdminUserOut:
    return AdminUserOut(user=users.user_out(user, viewer=viewer), active=user.active, erased=user.erased_at is not None)
