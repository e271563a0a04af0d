"""Who may do what: roles bound to platform user ids, and one role × action table."""

from __future__ import annotations

from enum import Enum

from bot.config import RolesConfig
from bot.domain import Identity


class Role(Enum):
    SUBSCRIBER = "subscriber"  # anyone who talks to the bot
    OPERATOR = "operator"
    OFFICER = "officer"
    ADMIN = "admin"


class Action(Enum):
    SUBSCRIBE = "subscribe"
    ISSUE_ALERT = "issue_alert"
    LIST_ALERTS = "list_alerts"
    DECIDE_ALERT = "decide_alert"
    CLOSE_ALERT = "close_alert"  # all-clear, recall
    SCHEDULE = "schedule"
    ANSWER_TIP = "answer_tip"
    REGISTER_GROUP = "register_group"
    MANAGE_ROLES = "manage_roles"


PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.SUBSCRIBE: frozenset(Role),
    Action.ISSUE_ALERT: frozenset({Role.OPERATOR}),
    Action.LIST_ALERTS: frozenset({Role.OPERATOR, Role.OFFICER, Role.ADMIN}),
    Action.DECIDE_ALERT: frozenset({Role.OFFICER}),
    Action.CLOSE_ALERT: frozenset({Role.OPERATOR, Role.OFFICER}),
    Action.SCHEDULE: frozenset({Role.OPERATOR}),
    Action.ANSWER_TIP: frozenset({Role.OPERATOR, Role.OFFICER}),
    Action.REGISTER_GROUP: frozenset({Role.ADMIN}),
    Action.MANAGE_ROLES: frozenset({Role.ADMIN}),
}


def speaks_for_alert(identity: Identity, roles: frozenset[Role], author: str) -> bool:
    """Whether ``identity`` belongs to the organisation that issued an alert, and so may
    end or recall it. There are no organisations yet (a later issue adds them): until
    then the alert's organisation is its author and the officers, who answer for every
    alert of the département. Another operator cannot end someone else's alert."""
    return str(identity) == author or Role.OFFICER in roles


GRANTABLE = {"admin": Role.ADMIN, "operator": Role.OPERATOR, "officer": Role.OFFICER}


class RoleBook:
    """Roles from the configuration (fixed) plus those granted at run time (``/role``)."""

    def __init__(self, config: RolesConfig) -> None:
        self._configured: dict[Role, frozenset[str]] = {
            Role.ADMIN: frozenset(config.admins),
            Role.OPERATOR: frozenset(config.operators),
            Role.OFFICER: frozenset(config.officers),
        }
        self._granted: dict[Role, set[str]] = {role: set() for role in self._configured}

    def load_granted(self, pairs: list[tuple[str, str]]) -> None:
        for identity, role in pairs:
            self._granted[GRANTABLE[role]].add(identity)

    def grant(self, identity: str, role: Role) -> None:
        self._granted[role].add(identity)

    def revoke(self, identity: str, role: Role) -> None:
        self._granted[role].discard(identity)

    def configured(self, identity: str, role: Role) -> bool:
        return identity in self._configured[role]

    def roles_of(self, identity: Identity) -> frozenset[Role]:
        key = str(identity)
        held = {role for role, members in self._configured.items() if key in members}
        held |= {role for role, members in self._granted.items() if key in members}
        return frozenset({Role.SUBSCRIBER, *held})

    def people(self) -> dict[str, frozenset[Role]]:
        """Everyone named in the configuration, with their roles (PLATFORM:ID → roles)."""
        names = {name for members in (*self._configured.values(), *self._granted.values())
                 for name in members}
        return {name: self.roles_of(Identity.parse(name)) for name in sorted(names)}

    def may(self, identity: Identity, action: Action) -> bool:
        return bool(self.roles_of(identity) & PERMISSIONS[action])
