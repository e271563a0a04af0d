"""Organisations: the forces of one département (gendarmerie, police, préfecture…).

Each has a territory (a perimeter of the grammar, « dep:48 sauf 48095 »), its staff, its
officers' channels and the signature its copies carry. An operator alerts inside their
organisation's territory only; only officers of the issuing organisation, or of an
overseeing one (a préfecture), decide on its alerts; lists, journals, statistics and
exports show an organisation its own alerts (an overseer sees all). A configuration
without ``organisations`` is one implicit organisation (``IMPLICIT``) covering every
commune, with the top-level ``signature`` and officers' channels: the bot as it was.

Mayors (``roles.mayors``) represent communes: they may send prevention messages to their
own communes, approved by the organisation covering them, and receive every alert
touching them (the ``maires`` audience, bot/broadcast/outbox.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.config import Config, ConfigError
from bot.domain import ChatRef, Identity
from bot.geo.communes import CommuneLayer
from bot.geo.perimeter import PerimeterError, parse_perimeter

IMPLICIT = "defaut"  # the organisation of a configuration without organisations
MAYORS = "maires"  # the audience of mayors, whatever they chose


@dataclass(frozen=True)
class Organisation:
    key: str
    name: str
    signature: str
    territory_text: str
    territory: frozenset[str]  # INSEE codes where it may alert (an overseer: its départements)
    oversees: bool = False
    decides_in_channel: bool = False  # an overseer's buttons on others' requests
    channels: tuple[ChatRef, ...] = ()
    retired: bool = False  # named by old alerts, no longer configured
    cap_sender: str = ""  # CAP 1.2 ``sender`` (no spaces); empty: alerte-<key>

    def __post_init__(self) -> None:
        if not self.cap_sender:
            object.__setattr__(self, "cap_sender", f"alerte-{self.key}")

    def outside(self, communes: Iterable[str]) -> frozenset[str]:
        return frozenset(communes) - self.territory


@dataclass(frozen=True)
class Posting:
    """One officers' channel a request goes to, and whether its buttons are shown there."""

    chat: ChatRef
    decides: bool


@dataclass
class Organisations:
    """The configured organisations, who belongs to which, and the mayors' communes."""

    all: tuple[Organisation, ...]
    members: dict[str, str]  # PLATFORM:ID → organisation key (configured staff)
    mayors: dict[str, frozenset[str]] = field(default_factory=dict)  # PLATFORM:ID → INSEE
    implicit: bool = False
    fallback_signature: str = "Gendarmerie"
    granted: dict[str, str] = field(default_factory=dict)  # roles granted at run time

    @classmethod
    def build(cls, config: Config, geo: CommuneLayer) -> Organisations:
        """From the configuration; territories and mayors' communes are perimeters, parsed
        against the communes here (a mistake is a ConfigError naming the key)."""
        mayors = {identity: _communes(config, geo, text, f"roles.mayors.{identity}")
                  for identity, text in config.roles.mayors.items()}
        if not config.organisations:
            return cls(implicit_organisations(config, geo), {}, mayors, True, config.signature)
        found: list[Organisation] = []
        members: dict[str, str] = {}
        for index, item in enumerate(config.organisations):
            territory = _communes(config, geo, item.territory,
                                  f"organisations[{index}].territory")
            if item.oversees:  # it may alert anywhere in the départements it touches
                departements = {c.departement for code in territory
                                if (c := geo.by_insee(code)) is not None}
                territory = frozenset(code for dep in departements
                                      for code in geo.in_departement(dep))
            channels = tuple(ChatRef(platform, chat) for platform, chat
                             in sorted(item.officers_channels.items()))
            found.append(Organisation(item.key, item.name, item.signature, item.territory,
                                      territory, item.oversees, item.decides_in_channel,
                                      channels, cap_sender=item.cap_sender))
            for identity in (*item.admins, *item.operators, *item.officers):
                members[identity] = item.key
        return cls(tuple(found), members, mayors, False, config.signature)

    # -- who and where ------------------------------------------------------------------

    def get(self, key: str) -> Organisation:
        """The organisation of that key; one no longer configured (an old alert's) is a
        retired one: signed with the top-level signature, decided and seen by overseers."""
        for organisation in self.all:
            if organisation.key == key:
                return organisation
        return Organisation(key, key, self.fallback_signature, "", frozenset(), retired=True)

    def signature(self, key: str) -> str:
        """What the copies of an organisation's alerts are signed with."""
        return self.get(key).signature

    def of(self, identity: Identity | str) -> Organisation | None:
        """The organisation a person works for; None for someone outside every one."""
        if self.implicit:
            return self.all[0]
        key = self.members.get(str(identity)) or self.granted.get(str(identity))
        return None if key is None else self.get(key)

    def key_of(self, identity: Identity | str) -> str:
        found = self.of(identity)
        return IMPLICIT if found is None else found.key

    def join(self, identity: str, key: str) -> None:
        """A role granted at run time belongs to its granter's organisation."""
        if identity not in self.members:
            self.granted[identity] = key

    def load_granted(self, granted: Mapping[str, str]) -> None:
        for identity, key in granted.items():
            self.join(identity, key)

    def covering(self, insee: str) -> Organisation | None:
        """Who answers for a commune: the force whose territory holds it, else an
        overseer's."""
        holders = [o for o in self.all if insee in o.territory]
        return next((o for o in holders if not o.oversees), holders[0] if holders else None)

    def competent(self, communes: Iterable[str]) -> list[Organisation]:
        """The organisations covering these communes, in configuration order."""
        keys = {found.key for code in communes if (found := self.covering(code)) is not None}
        return [o for o in self.all if o.key in keys]

    def answers_for(self, person: Organisation | None, alert_key: str) -> bool:
        """Whether a person of ``person`` may decide, see or end an alert of ``alert_key``:
        its own organisation, or an overseer."""
        return person is not None and (person.key == alert_key or person.oversees)

    def sees_all(self, person: Organisation | None) -> bool:
        return self.implicit or (person is not None and person.oversees)

    def visible_keys(self, person: Organisation | None) -> frozenset[str] | None:
        """The organisations whose alerts a person's lists show; None: all of them."""
        if self.sees_all(person):
            return None
        return frozenset() if person is None else frozenset({person.key})

    # -- officers' channels ----------------------------------------------------------------

    def postings(self, key: str) -> list[Posting]:
        """Where an alert of ``key`` is asked for: its organisation's channels (with the
        buttons), then each overseer's (read-only unless it decides in its channel)."""
        own = self.get(key)
        postings = [Posting(chat, True) for chat in own.channels]
        for overseer in self.all:
            if overseer.oversees and overseer.key != own.key:
                postings += [Posting(chat, overseer.decides_in_channel)
                             for chat in overseer.channels if chat not in own.channels]
        return postings

    # -- mayors ------------------------------------------------------------------------

    def mayor_communes(self, identity: Identity | str) -> frozenset[str]:
        return self.mayors.get(str(identity), frozenset())

    def mayors_of(self, communes: Iterable[str]) -> list[str]:
        """The mayors (PLATFORM:ID) of any of these communes."""
        codes = frozenset(communes)
        return sorted(identity for identity, own in self.mayors.items() if own & codes)


def implicit_organisations(config: Config, geo: CommuneLayer) -> tuple[Organisation, ...]:
    """The one organisation of a configuration without organisations: every commune, the
    top-level signature and officers' channels (routed as before: every channel)."""
    everything = frozenset(code for dep in geo.departements() for code in geo.in_departement(dep))
    return (Organisation(IMPLICIT, config.signature, config.signature, "", everything),)


def configured_channels(config: Config, platform: str) -> list[str]:
    """Every organisation's officers' channel on ``platform`` (the transports treat them
    all as officers' channels)."""
    return [o.officers_channels[platform] for o in config.organisations
            if platform in o.officers_channels]


def _communes(config: Config, geo: CommuneLayer, text: str, key: str) -> frozenset[str]:
    try:
        return parse_perimeter(text, geo, max_radius_km=config.geo.max_radius_km,
                               files_dir=config.resolve(config.geo.perimeter_files)).communes
    except PerimeterError as error:
        raise ConfigError(f"{config.source or 'configuration'}: {key}: {text!r} is not a "
                          f"perimeter the communes know ({error.key})") from None


__all__: Sequence[str] = ("IMPLICIT", "MAYORS", "Organisation", "Organisations", "Posting",
                          "configured_channels", "implicit_organisations")
