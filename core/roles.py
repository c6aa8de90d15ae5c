"""User roles and what each may do by default."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The roles of the contract."""

    CUSTOMER = "customer"
    MERCHANT = "merchant"
    DESIGNER = "designer"
    AGENT = "agent"
    ADMIN = "admin"


SELF_SIGNUP_ROLES = frozenset({Role.CUSTOMER, Role.MERCHANT, Role.DESIGNER})
STAFF_ROLES = frozenset({Role.AGENT, Role.ADMIN})
