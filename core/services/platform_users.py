"""Accounts of the host platform's users: provisioned on first sight, kept in step with the platform.

A platform account is known by (issuer, the platform's user id), never by email:
its unique sign-in key (`User.email`) is `platform <issuer> <external id>`, which
contains spaces and so can never be a password login's address. The issuer is
`MQCHAT_PLATFORM_JWT_ISSUER` (or "platform"), the same for exchanged tokens and
the server API, so both name the same account.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from core import topics
from core.documents import User
from core.errors import Forbidden, InvalidInput, NotFound
from core.roles import Role
from core.services.users import display_name


class AccountDisabled(Forbidden):
    """The platform user's mqchat account was deactivated by an admin; the platform cannot undo that."""


def platform_key(issuer: str, external_id: str) -> str:
    """The sign-in key of a platform account (stored in `User.email`); InvalidInput for an unusable id."""
    if not topics.is_valid_external_id(external_id):
        raise InvalidInput("a platform user id is 1-128 characters without spaces, '/', '+', '#' or a leading '$'")
    return f"platform {issuer} {external_id}"


async def find_platform_user(issuer: str, external_id: str) -> User | None:
    """The account of this platform user, active or not, if it was ever provisioned."""
    return await User.find_one({"email": platform_key(issuer, external_id)})


async def get_platform_user(issuer: str, external_id: str) -> User:
    """The active account of this platform user; NotFound or AccountDisabled otherwise."""
    user = await find_platform_user(issuer, external_id)
    if user is None:
        raise NotFound(f"no user with platform id {external_id!r}")
    if not user.active:
        raise AccountDisabled("this account is disabled in mqchat")
    return user


async def upsert_platform_user(
    issuer: str, external_id: str, name: str, email: str | None, role: Role
) -> tuple[User, bool]:
    """Create the account or bring its name, email and role up to date; (user, created).

    InvalidInput for an unusable id or name.

    A deactivated account is not changed: AccountDisabled, since the platform's word
    is not enough to bring it back (an admin re-activates it in mqchat).
    """
    key, name = platform_key(issuer, external_id), display_name(name)
    user = await User.find_one({"email": key})
    if user is None:
        user = User(
            email=key, username=name, role=role, password_hash="", external_id=external_id, platform_email=email
        )
        try:
            await user.insert()
            return user, True
        except DuplicateKeyError:  # provisioned by a concurrent request
            user = await User.find_one({"email": key})
            if user is None:  # pragma: no cover - deleted in between
                raise
    if not user.active:
        raise AccountDisabled("this account is disabled in mqchat")
    if (user.username, user.platform_email, user.role) != (name, email, role):
        user.username, user.platform_email, user.role = name, email, role
        await user.replace()
    return user, False
