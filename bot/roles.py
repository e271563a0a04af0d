"""Who may do what: roles bound to platform user ids, and one role × action table."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from bot.config import OrganisationConfig, RolesConfig
from bot.domain import Identity
from bot.storage.invitations import ReferentGrant


class Role(Enum):
    SUBSCRIBER = "subscriber"  # anyone who talks to the bot
    OPERATOR = "operator"
    OFFICER = "officer"
    ADMIN = "admin"
    REFERENT = "referent"  # a partner's staff, bound to communities (issue 17)
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
    INVITE = "invite"  # invitation links and posters, for one's communities (admins: all)
    VET = "vet"  # accept or decline requests to join a vetted community


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
    Action.INVITE: frozenset({Role.REFERENT, Role.ADMIN}),
    Action.VET: frozenset({Role.REFERENT, Role.ADMIN}),
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
        # Référents: PLATFORM:ID → communities, and the partner they speak for.
        self._referents_configured: dict[str, frozenset[str]] = {
            who: frozenset(referent.communities) for who, referent in config.referents.items()}
        self._partners: dict[str, str] = {
            who: referent.partner for who, referent in config.referents.items()}
        self._referents_granted: dict[str, set[str]] = {}

    def load_granted(self, pairs: list[tuple[str, str]]) -> None:
        for identity, role in pairs:
            self._granted[GRANTABLE[role]].add(identity)

    def load_referents(self, grants: list[ReferentGrant]) -> None:
        for grant in grants:
            self.grant_referent(grant.identity, [grant.community], grant.partner)

    def grant_referent(self, identity: str, communities: list[str], partner: str) -> None:
        self._referents_granted.setdefault(identity, set()).update(communities)
        if identity not in self._referents_configured:  # the configuration's name stands
            self._partners[identity] = partner

    def revoke_referent(self, identity: str, communities: list[str] | None) -> None:
        held = self._referents_granted.get(identity, set())
        held -= held if communities is None else set(communities)
        if not held:
            self._referents_granted.pop(identity, None)
            if identity not in self._referents_configured:
                self._partners.pop(identity, None)

    def referent_communities(self, identity: Identity | str) -> frozenset[str]:
        """The communities a référent handles (empty for anyone else)."""
        key = str(identity)
        return (self._referents_configured.get(key, frozenset())
                | frozenset(self._referents_granted.get(key, set())))

    def configured_referent(self, identity: str, community: str) -> bool:
        return community in self._referents_configured.get(identity, frozenset())

    def partner_of(self, identity: Identity | str) -> str | None:
        return self._partners.get(str(identity))

    def referents_of(self, community: str) -> list[str]:
        """Who handles a community's requests (PLATFORM:ID)."""
        everyone = {*self._referents_configured, *self._referents_granted}
        return sorted(who for who in everyone if community in self.referent_communities(who))

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
        if self.referent_communities(key):
            held.add(Role.REFERENT)
        return frozenset({Role.SUBSCRIBER, *held})

    def people(self) -> dict[str, frozenset[Role]]:
        """Everyone named in the configuration, with their roles (PLATFORM:ID → roles)."""
        names = {name for members in (*self._configured.values(), *self._granted.values())
                 for name in members}
        names |= {*self._referents_configured, *self._referents_granted}
        return {name: self.roles_of(Identity.parse(name)) for name in sorted(names)}

    def may(self, identity: Identity, action: Action) -> bool:
        return bool(self.roles_of(identity) & PERMISSIONS[action])
