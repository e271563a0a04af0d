"""People as staff read them: « Validée par Capitaine Martin », never « telegram:5001 ».

Actions are recorded under platform ids (``alerts.requested_by``, ``approvals.officer``,
the transitions' actors); what people read names them instead, in this order: the name the
configuration gives (``roles.names``), the platform display name seen at the person's first
message with a role (``staff_names``), else their role (« un officier »). The bot's own
actions (« system ») and a schedule's read as such. Ids stay in the audit trail only.

Names are labels, never credentials: roles stay bound to platform user ids
(bot/roles.py), since anyone can take any display name.
"""

from __future__ import annotations

from datetime import datetime

from bot.context import Records, Services
from bot.domain import Identity
from bot.i18n import Translator
from bot.limits import STAFF_NAME_CHARS
from bot.roles import Role, RoleBook

SYSTEM = "system"  # the actor of what the bot does by itself (expiry, scheduled sends)
SCHEDULE = "schedule:"  # actor prefix of a schedule's occurrences (bot/alert_deadlines.py)
STAFF_ROLES = frozenset({Role.OFFICER, Role.OPERATOR, Role.ADMIN})
# When nobody gave a name: the person's role, the first they hold in this order.
ROLE_WORDS = ((Role.OFFICER, "people.officer"), (Role.OPERATOR, "people.operator"),
              (Role.ADMIN, "people.admin"))


async def display_name(records: Records, t: Translator, actor: str,
                       acting_as: Role | None = None) -> str:
    """How ``actor`` (a PLATFORM:ID, « system », « schedule:N ») reads for people;
    ``acting_as``: the role they acted in, said when nobody gave a name (a requester who
    is also an officer reads « un opérateur »)."""
    configured = records.config.roles.names.get(actor, "").strip()
    if configured:
        return configured
    if actor == SYSTEM:
        return t("people.system")
    if actor.startswith(SCHEDULE):
        return t("people.schedule", number=actor.removeprefix(SCHEDULE))
    stored = await records.stores.staff_names.get(actor)
    if stored:
        return stored
    return t(_role_word(records.role_book, actor, acting_as))


def _role_word(roles: RoleBook, actor: str, acting_as: Role | None) -> str:
    try:
        held = roles.roles_of(Identity.parse(actor))
    except ValueError:  # not an identity at all
        return "people.staff"
    words = dict(ROLE_WORDS)
    if acting_as in held and acting_as in words:
        return words[acting_as]
    return next((key for role, key in ROLE_WORDS if role in held), "people.staff")


def is_staff(roles: RoleBook, identity: str) -> bool:
    try:
        return bool(roles.roles_of(Identity.parse(identity)) & STAFF_ROLES)
    except ValueError:
        return False


def shown_name(platform_name: str) -> str:
    """A platform display name as it may be kept: one line, at most STAFF_NAME_CHARS."""
    return " ".join(platform_name.split())[:STAFF_NAME_CHARS].strip()


async def remember_platform_name(services: Services, identity: Identity, platform_name: str,
                                 now: datetime) -> None:
    """Keep a staff member's platform display name, seen at their first message with a
    role, unless the configuration names them (nothing kept that is not needed)."""
    name = shown_name(platform_name)
    key = str(identity)
    if name and key not in services.config.roles.names and is_staff(services.roles, key):
        await services.stores.staff_names.remember(key, name, now)


async def forget_names(services: Services, identities: list[str] | None = None) -> int:
    """Erase the names no longer needed: of people who hold no role any more, or whom the
    configuration names; with ``identities``, of those people whatever their role (their
    erasure). How many were erased."""
    held = await services.stores.staff_names.identities()
    if identities is not None:
        gone = [identity for identity in held if identity in identities]
    else:
        gone = [identity for identity in held
                if identity in services.config.roles.names
                or not is_staff(services.roles, identity)]
    return await services.stores.staff_names.forget(gone)
