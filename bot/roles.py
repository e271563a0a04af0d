"""Who may do what: roles bound to platform user ids, and one role × action table."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from bot.config import OrganisationConfig, RolesConfig
from bot.domain import Identity


class Role(Enum):
    SUBSCRIBER = "subscriber"  # anyone who talks to the bot
    OPERATOR = "operator"
    OFFICER = "officer"
    ADMIN = "admin"
    MAYOR = "mayor"  # represents commune(s) (roles.mayors): prevention messages there


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
    # A mayor's alert is limited to prevention in their own communes (bot/alert_approval.py).
    Action.ISSUE_ALERT: frozenset({Role.OPERATOR, Role.MAYOR}),
    Action.LIST_ALERTS: frozenset({Role.OPERATOR, Role.OFFICER, Role.ADMIN, Role.MAYOR}),
    Action.DECIDE_ALERT: frozenset({Role.OFFICER}),
    Action.CLOSE_ALERT: frozenset({Role.OPERATOR, Role.OFFICER, Role.MAYOR}),
    Action.SCHEDULE: frozenset({Role.OPERATOR}),
    Action.ANSWER_TIP: frozenset({Role.OPERATOR, Role.OFFICER}),
    Action.REGISTER_GROUP: frozenset({Role.ADMIN}),
    Action.MANAGE_ROLES: frozenset({Role.ADMIN}),
}


def speaks_for_alert(identity: Identity, roles: frozenset[Role], author: str,
                     same_organisation: bool = True) -> bool:
    """Whether ``identity`` may end or recall an alert: its author, or an officer of the
    organisation that issued it (or of an overseer: ``same_organisation``,
    bot/organisations.py). Another operator cannot end someone else's alert."""
    return str(identity) == author or (Role.OFFICER in roles and same_organisation)


GRANTABLE = {"admin": Role.ADMIN, "operator": Role.OPERATOR, "officer": Role.OFFICER}


class RoleBook:
    """Roles from the configuration (fixed) plus those granted at run time (``/role``)."""

    def __init__(self, config: RolesConfig,
                 organisations: Sequence[OrganisationConfig] = ()) -> None:
        """``config``'s lists, plus each organisation's staff (bot/organisations.py)."""
        def everyone(role: str) -> frozenset[str]:
            lists = [getattr(config, role), *(getattr(o, role) for o in organisations)]
            return frozenset(identity for members in lists for identity in members)

        self._configured: dict[Role, frozenset[str]] = {
            Role.ADMIN: everyone("admins"),
            Role.OPERATOR: everyone("operators"),
            Role.OFFICER: everyone("officers"),
            Role.MAYOR: frozenset(config.mayors),
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
