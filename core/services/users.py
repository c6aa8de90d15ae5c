"""User accounts: creation, credential checks, lookup and the public view of a user."""

from __future__ import annotations

import re
import unicodedata

from pymongo.errors import DuplicateKeyError

from core.clock import iso, iso_from_ms
from core.documents import User
from core.errors import Conflict, InvalidInput, Unauthorized
from core.payloads import INVISIBLE_CATEGORIES, Preferences, PresenceOut, UserOut
from core.roles import Role
from core.security import hash_password, verify_password
from core.services.lookup import get_by_id

MAX_LIST_LIMIT = 100
BAD_CREDENTIALS = "invalid email or password"


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively and stored lower-case."""
    return email.strip().lower()


# control (Cc), invisible formatting (Cf: bidi overrides and isolates, zero-width characters) and line separators


def display_name(username: str) -> str:
    """`username` stripped; InvalidInput if it is empty or holds a control or invisible formatting character.

    Bidi overrides (U+202A-U+202E, U+2066-U+2069) can make a name read as another
    one and zero-width characters make look-alike names; neither has a place in a name.
    """
    name = username.strip()
    if not name:
        raise InvalidInput("username is empty")
    for char in name:
        if unicodedata.category(char) in INVISIBLE_CATEGORIES:
            raise InvalidInput(f"username may not contain control or invisible formatting characters (U+{ord(char):04X})")
    return name


async def create_user(email: str, username: str, password: str, role: Role) -> User:
    """Store a new user; Conflict if the email is taken."""
    user = User(
        email=normalize_email(email),
        username=display_name(username),
        role=role,
        password_hash=await hash_password(password),
    )
    try:
        await user.insert()
    except DuplicateKeyError:
        raise Conflict("an account with this email already exists") from None
    return user


async def check_credentials(email: str, password: str) -> User:
    """The active user with these credentials; one and the same Unauthorized for every failure."""
    user = await User.find_one({"email": normalize_email(email)})
    # a platform account has no password: it is checked like an unknown email (same time, same answer)
    valid = await verify_password(password, user.password_hash if user and not user.is_platform_user else None)
    if user is None or not valid or not user.active:
        raise Unauthorized(BAD_CREDENTIALS)
    return user


async def find_user(user_id: str) -> User | None:
    """The user with this id, or None (also for ids that are not 24-hex)."""
    return await get_by_id(User, user_id)


async def search_users(
    query: str | None, role: Role | None, limit: int, by_email: bool = False, active: bool | None = True
) -> list[User]:
    """Users whose username (or, with `by_email`, for admins only, email) starts with `query`; only active ones
    unless `active` says otherwise (None: all, for the admin console).

    Others' emails are hidden, so matching them would let anyone rebuild an address
    one character at a time (issue 24): non-admins search by username only.
    """
    conditions: dict[str, object] = {} if active is None else {"active": active}
    if role is not None:
        conditions["role"] = role.value
    if query:
        prefix = "^" + re.escape(query.strip().lower())
        by_name = {"username": {"$regex": prefix, "$options": "i"}}
        if by_email:
            conditions["$or"] = [by_name, {"email": {"$regex": prefix}}]
        else:
            conditions.update(by_name)
    limit = max(1, min(limit, MAX_LIST_LIMIT))
    return await User.find(conditions).sort("username").limit(limit).to_list()


def user_out(user: User, viewer: User | None, show_email: bool = False) -> UserOut:
    """The contract's `user` as `viewer` may see it (`show_email`: for the platform's backend)."""
    is_self = viewer is not None and viewer.id == user.id
    shows_email = show_email or is_self or (viewer is not None and viewer.role is Role.ADMIN)
    return UserOut(
        id=str(user.id),
        username=user.username,
        role=user.role,
        created_at=iso(user.created_at) or "",
        presence=PresenceOut(status=user.presence_status, last_seen=iso_from_ms(user.last_seen_ms)),
        email=user.contact_email if shows_email else None,
        preferences=Preferences(email_notifications=user.email_notifications) if is_self else None,
        external_id=user.external_id,
        active=user.active,
    )


async def set_password(user: User, password: str) -> None:
    """Store a new password hash (the whole document is written)."""
    user.password_hash = await hash_password(password)
    await user.replace()


async def set_access(user: User, active: bool | None, role: Role | None) -> None:
    """Enable or disable an account and/or change its role (the whole document is written)."""
    if active is not None:
        user.active = active
    if role is not None:
        user.role = role
    await user.replace()


async def update_profile(user: User, username: str | None, email_notifications: bool | None) -> User:
    """Change the user's display name or notification preferences (the whole document is written)."""
    if username is not None:
        user.username = display_name(username)
    if email_notifications is not None:
        user.email_notifications = email_notifications
    await user.replace()
    return user
