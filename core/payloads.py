"""Wire shapes (msgspec structs) of the contract, shared by the API, the bridge and the CLI."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from core.roles import Role

Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Username = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Password = Annotated[str, Meta(min_length=8, max_length=256)]
ObjectIdStr = Annotated[str, Meta(pattern=r"^[0-9a-f]{24}$")]


class ErrorDetail(Struct):
    code: str
    message: str


class ErrorResponse(Struct):
    """The contract's error shape: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class PresenceOut(Struct):
    status: str
    last_seen: str | None


class UserOut(Struct, omit_defaults=True):
    """A user as others see it; `email` only for the user themself and admins."""

    id: str
    username: str
    role: Role
    created_at: str
    presence: PresenceOut
    email: str | None = None


class UserEnvelope(Struct):
    user: UserOut


class UserList(Struct):
    items: list[UserOut]


class MqttConnectInfo(Struct):
    """Everything a client needs to connect to the broker."""

    host: str
    port: int
    ws_url: str
    username: str
    password: str
    client_id_prefix: str


class AuthResponse(Struct):
    user: UserOut
    access_token: str
    expires_in: int
    mqtt: MqttConnectInfo
    token_type: str = "bearer"


class SignupRequest(Struct, forbid_unknown_fields=True):
    email: Email
    username: Username
    password: Password
    role: Role | None = None


class LoginRequest(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(max_length=254)]
    password: Annotated[str, Meta(max_length=256)]


class CreateUserRequest(Struct, forbid_unknown_fields=True):
    email: Email
    username: Username
    password: Password
    role: Role


class HealthOut(Struct):
    status: str
    store: str
    broker: str
    version: str

