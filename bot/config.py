"""Configuration: YAML with ``${ENV}`` interpolation, validated against typed dataclasses.

Every problem is reported as one line naming the file and the key, so an operator
can fix a broken deployment without reading a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.domain import PLATFORM_ID_EXAMPLES, is_platform_id
from bot.limits import STAFF_NAME_CHARS
from bot.resources import bundled, bundled_name, is_bundled
from bot.yamltext import AliasRefused, load_yaml

ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator."""


@dataclass(frozen=True)
class GeoConfig:
    communes: list[str] = field(
        default_factory=lambda: [
            "bundled:geo/communes-70.geojson",
            "bundled:geo/communes-48.geojson",
        ]
    )
    max_radius_km: float = 200.0
    perimeter_files: str = "var/perimetres"


@dataclass(frozen=True)
class ReferentConfig:
    """A partner's staff member (a chamber, an association): the name on their posters and
    the communities whose invitations and requests they handle."""

    partner: str = ""
    communities: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RolesConfig:
    admins: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    officers: list[str] = field(default_factory=list)
    # PLATFORM:ID → partner and communities (issue 17: invitations, vetted communities)
    referents: dict[str, ReferentConfig] = field(default_factory=dict)
    # PLATFORM:ID → the name other staff read (« Capitaine Martin »), before any display name
    names: dict[str, str] = field(default_factory=dict)
    # PLATFORM:ID → the commune(s) a mayor represents, a perimeter of communes (« 48095 »)
    mayors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OrganisationConfig:
    """One force of the département (bot/organisations.py): who belongs to it, where it
    may alert, where its officers decide, how its copies are signed."""

    key: str = ""
    name: str = ""  # full name (« Groupement de gendarmerie de la Lozère »)
    signature: str = ""  # the copies' signature line (« Gendarmerie de la Lozère »)
    territory: str = ""  # a perimeter (« dep:48 sauf 48095 »)
    oversees: bool = False  # sees, may approve and may alert everything in its départements
    # An overseer's channel gets the other organisations' requests read-only (no buttons;
    # its officers may still /valider N) unless this is true.
    decides_in_channel: bool = False
    cap_sender: str = ""  # CAP 1.2 sender (no spaces, e.g. an address); empty: alerte-<key>
    # platform → its officers' channel there: telegram: the group's chat id, matrix: the
    # room id (!…, not an alias), console: the channel's name
    officers_channels: dict[str, str] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    officers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConsoleConfig:
    enabled: bool = True
    officers_channel: str = "#officiers"
    identities: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False
    token: str = ""
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    officers_chat_id: int | None = None
    mode: str = "polling"
    poll_timeout: int = 30
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str = ""
    webhook_max_body_bytes: int = 1_048_576  # 1 MiB; an update is a few kilobytes
    paid_broadcast: bool = False


@dataclass(frozen=True)
class MatrixConfig:
    enabled: bool = False
    homeserver: str = ""
    user_id: str = ""
    access_token: str = ""
    password: str = ""
    device_id: str = ""
    officers_room: str = ""


@dataclass(frozen=True)
class WhatsAppConfig:
    """WhatsApp Business Cloud API, for subscribers (docs/whatsapp.md). Officers approve on
    Telegram or Matrix: WhatsApp can neither edit a request nor post outside 24 hours."""

    enabled: bool = False
    phone_number_id: str = ""
    # The number people write to, digits with the country code (33612345678): the
    # invitations' wa.me links and QR codes (issue 17). Empty: people type /start CODE.
    display_phone_number: str = ""
    access_token: str = ""  # ${WHATSAPP_ACCESS_TOKEN}
    app_secret: str = ""  # ${WHATSAPP_APP_SECRET}: signs every webhook (X-Hub-Signature-256)
    verify_token: str = ""  # the webhook's GET handshake
    webhook_listen: str = "127.0.0.1:8444"  # HOST:PORT, behind the reverse proxy
    webhook_path: str = "/whatsapp"
    base_url: str = "https://graph.facebook.com"  # or the test double
    api_version: str = "23.0"
    template: str = "alerte_info"  # utility template with quick-reply buttons
    follow_up_template: str = "alerte_suite"  # the same without buttons
    template_language: str = "fr"
    cost_per_message: float = 0.0  # euros per template message, from Meta's price list
    officers_chat: str = ""  # discouraged: officers use Telegram or Matrix


@dataclass(frozen=True)
class ApprovalConfig:
    reminder_after_minutes: int = 10
    expire_after_minutes: int = 120


@dataclass(frozen=True)
class PlatformRateLimits:
    global_per_second: float = 30.0
    per_chat_per_second: float = 1.0
    per_group_per_minute: float = 20.0  # a group may take a minute's worth at once
    per_chat_burst: int = 3  # messages one private chat may get at once, then its rate


@dataclass(frozen=True)
class RateLimitsConfig:
    telegram: PlatformRateLimits = field(default_factory=PlatformRateLimits)
    matrix: PlatformRateLimits = field(
        default_factory=lambda: PlatformRateLimits(50.0, 5.0, 300.0)
    )
    console: PlatformRateLimits = field(
        default_factory=lambda: PlatformRateLimits(1000.0, 1000.0, 60000.0, 1000)
    )
    # 80 messages/s per business phone number (Cloud API default throughput); one person
    # may get a burst, then about one message every 6 s (the pair rate limit, 131056).
    whatsapp: PlatformRateLimits = field(
        default_factory=lambda: PlatformRateLimits(80.0, 0.16, 20.0, 20)
    )


@dataclass(frozen=True)
class BroadcastConfig:
    max_attempts: int = 5
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    in_flight: int | None = None  # None: sized from each platform's rate (in_flight_for)
    resolution_slice: int = 10_000

    def in_flight_for(self, limits: PlatformRateLimits) -> int:
        """Sends kept open on one platform: as set, or a tenth of a second of its rate
        (8 to 128): enough to hold the ceiling when each call takes up to 0.2 s, since
        the dispatcher keeps two batches in hand."""
        if self.in_flight is not None:
            return self.in_flight
        return min(128, max(8, math.ceil(limits.global_per_second / 10)))


@dataclass(frozen=True)
class ConversationConfig:
    timeout_minutes: int = 30


@dataclass(frozen=True)
class PrivacyConfig:
    blocked_retention_days: int = 30
    paused_retention_days: int = 365
    message_ids_retention_days: int = 30


@dataclass(frozen=True)
class ThrottleConfig:
    messages_per_minute: int = 20
    burst: int = 10


@dataclass(frozen=True)
class MonitoringConfig:
    listen: str = ""  # HOST:PORT of /healthz and /metrics; empty: no listener
    max_outbox_age_seconds: float = 300.0

    def address(self) -> tuple[str, int]:
        """``listen`` as (host, port), brackets off an IPv6 host; ValueError if malformed."""
        host, colon, port = self.listen.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not (colon and host and port.isascii() and port.isdigit() and int(port) < 65536):
            raise ValueError(self.listen)
        return host, int(port)


# Set by load_config from where the file is, never written in it.
FROM_LOADING = frozenset({"base_dir", "source"})


@dataclass(frozen=True)
class Config:
    database: str = "var/bot.sqlite3"
    language: str = "fr"
    staff_language: str = ""  # the officers' channels and staff notices; empty: language
    timezone: str = "Europe/Paris"
    consent_version: str = "2026-11"
    # The implicit organisation's signature at the foot of every copy, when no
    # ``organisations`` are configured (each organisation has its own).
    signature: str = "Gendarmerie"
    communities: str = "bundled:communities.yaml"
    categories: str = "bundled:categories.yaml"
    geo: GeoConfig = field(default_factory=GeoConfig)
    roles: RolesConfig = field(default_factory=RolesConfig)
    # Several forces in one département; none: one implicit organisation (bot/organisations.py)
    organisations: list[OrganisationConfig] = field(default_factory=list)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    matrix: MatrixConfig = field(default_factory=MatrixConfig)
    whatsapp: WhatsAppConfig = field(default_factory=WhatsAppConfig)
    approval: ApprovalConfig = field(default_factory=ApprovalConfig)
    rate_limits: RateLimitsConfig = field(default_factory=RateLimitsConfig)
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    secret_key: str = ""  # keys the audit trail (bot/keys.py); from the environment
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    base_dir: str = "."
    source: str = ""  # the file read (load_config): named where people are told to edit it

    def resolve(self, configured: str) -> Path:
        """A path of the configuration: ``bundled:NAME`` is a file shipped with the bot;
        a relative path is read from the configuration file's own folder, not the cwd."""
        if is_bundled(configured):
            return bundled(bundled_name(configured))
        path = Path(configured).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path


def load_config(path: Path, environ: typing.Mapping[str, str] | None = None) -> Config:
    raw = _read_yaml(path)
    env = os.environ if environ is None else environ
    try:
        interpolated = _interpolate(raw, env, path, "")
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    config: Config = _build(Config, interpolated, path, "")
    _check_semantics(config, path)
    # Relative paths are read from the file's own folder, so the bot behaves the same
    # whatever directory it is started from.
    return dataclasses.replace(config, base_dir=str(path.resolve().parent),
                               source=str(path))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    try:
        data = load_yaml(text)
    except AliasRefused as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    except (ValueError, KeyError, TypeError, OverflowError):
        # PyYAML's constructors raise these for values like "+.x" or "2026-13-45".
        raise ConfigError(f"{path}: invalid YAML value") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _interpolate(value: Any, env: typing.Mapping[str, str], path: Path, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, path, _join(key, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return ENV_PATTERN.sub(lambda match: _env_value(match, env, path, key), value)
    return value


def _env_value(match: re.Match[str], env: typing.Mapping[str, str], path: Path, key: str) -> str:
    name, default = match.group(1), match.group(2)
    if name in env:
        return env[name]
    if default is not None:
        return default
    raise ConfigError(f"{path}: {key}: environment variable {name} is not set")


# Keys of earlier versions: the error says what replaced them.
RENAMED = {"broadcast.batch_size": "broadcast.resolution_slice (subscriber ids per transaction "
                                   "when an alert's recipients are written)"}


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _build(cls: type[Any], data: Any, path: Path, key: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {key or 'top level'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name not in FROM_LOADING}
    for name in data:
        if name not in known:
            full = _join(key, str(name))
            hint = f" (now {RENAMED[full]})" if full in RENAMED else ""
            raise ConfigError(f"{path}: {full}: unknown key{hint}")
    values = {name: _convert(hints[name], data[name], path, _join(key, name)) for name in data}
    return cls(**values)


def _convert(hint: Any, value: Any, path: Path, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, path, key)
    if origin in (types.UnionType, typing.Union):
        return _convert_optional(hint, value, path, key)
    if origin is list:
        return _convert_list(hint, value, path, key)
    if origin is dict:
        return _convert_dict(hint, value, path, key)
    return _convert_scalar(hint, value, path, key)


def _convert_optional(hint: Any, value: Any, path: Path, key: str) -> Any:
    if value is None:
        return None
    (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return _convert(inner, value, path, key)


def _convert_list(hint: Any, value: Any, path: Path, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{path}: {key}: expected a list")
    (inner,) = typing.get_args(hint)
    return [_convert(inner, item, path, f"{key}[{i}]") for i, item in enumerate(value)]


def _convert_dict(hint: Any, value: Any, path: Path, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key}: expected a mapping")
    _, inner = typing.get_args(hint)
    return {str(k): _convert(inner, v, path, _join(key, str(k))) for k, v in value.items()}


def _convert_scalar(hint: Any, value: Any, path: Path, key: str) -> Any:
    try:
        return _scalar(hint, value, path, key)
    except (ValueError, OverflowError):  # e.g. a number of thousands of digits
        raise ConfigError(f"{path}: {key}: not a usable number") from None


def _scalar(hint: Any, value: Any, path: Path, key: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return float(value)  # environment variables always arrive as strings
    if hint is int and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)  # environment variables always arrive as strings
    if hint is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if hint is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, hint) or (hint is not bool and isinstance(value, bool)):
        expected = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}
        raise ConfigError(
            f"{path}: {key}: expected {expected.get(hint, hint.__name__)}, got {value!r}"
        )
    return value


def _check_semantics(config: Config, path: Path) -> None:
    for role in ("admins", "operators", "officers"):
        for index, identity in enumerate(getattr(config.roles, role)):
            if not is_platform_id(identity):
                raise ConfigError(
                    f"{path}: roles.{role}[{index}]: {identity!r} is not PLATFORM:ID with the "
                    f"platform's user id ({PLATFORM_ID_EXAMPLES}; the numeric Telegram id, "
                    "not @username; the full Matrix id, not a display name)")
    for identity, name in config.roles.names.items():
        if not is_platform_id(identity):
            raise ConfigError(f"{path}: roles.names.{identity}: not PLATFORM:ID "
                              f"({PLATFORM_ID_EXAMPLES})")
        if not name.strip() or len(name) > STAFF_NAME_CHARS:
            raise ConfigError(f"{path}: roles.names.{identity}: a name of 1 to {STAFF_NAME_CHARS}"
                              " characters")
    _check_referents(config.roles, path)
    if not config.signature.strip() or len(config.signature) > STAFF_NAME_CHARS:
        raise ConfigError(f"{path}: signature: 1 to {STAFF_NAME_CHARS} characters")
    for identity, communes in config.roles.mayors.items():
        if not is_platform_id(identity):
            raise ConfigError(f"{path}: roles.mayors.{identity}: not PLATFORM:ID "
                              f"({PLATFORM_ID_EXAMPLES})")
        if not communes.strip():
            raise ConfigError(f"{path}: roles.mayors.{identity}: the commune(s) the mayor "
                              "represents (e.g. \"48095\")")
    _check_organisations(config, path)
    _check_bundled_files(config, path)
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: timezone: unknown time zone {config.timezone!r}") from None
    if config.language not in ("fr", "en"):
        raise ConfigError(f"{path}: language: expected fr or en, got {config.language!r}")
    if config.staff_language not in ("", "fr", "en"):
        raise ConfigError(f"{path}: staff_language: expected fr, en or empty, got "
                          f"{config.staff_language!r}")
    if config.telegram.enabled and not config.telegram.token:
        raise ConfigError(f"{path}: telegram.token: required when telegram.enabled is true")
    if config.telegram.mode not in ("polling", "webhook"):
        raise ConfigError(f"{path}: telegram.mode: expected polling or webhook")
    matrix = config.matrix
    if matrix.enabled and not (matrix.homeserver and matrix.user_id):
        raise ConfigError(f"{path}: matrix.homeserver and matrix.user_id: required when enabled")
    if matrix.enabled and not (matrix.access_token or matrix.password):
        raise ConfigError(f"{path}: matrix.access_token: required when matrix.enabled is true")
    _check_whatsapp(config.whatsapp, path)
    broadcast = config.broadcast
    in_flight = 1 if broadcast.in_flight is None else broadcast.in_flight
    if min(broadcast.max_attempts, in_flight, broadcast.resolution_slice) < 1:
        raise ConfigError(f"{path}: broadcast.max_attempts, in_flight and resolution_slice"
                          " must be at least 1")
    _check_secret_key(config, path)
    _check_monitoring(config.monitoring, path)


def _check_referents(roles: RolesConfig, path: Path) -> None:
    for identity, referent in roles.referents.items():
        where = f"{path}: roles.referents.{identity}"
        if not is_platform_id(identity):
            raise ConfigError(f"{where}: not PLATFORM:ID ({PLATFORM_ID_EXAMPLES})")
        if not referent.partner.strip() or len(referent.partner) > STAFF_NAME_CHARS:
            raise ConfigError(f"{where}.partner: a name of 1 to {STAFF_NAME_CHARS} characters"
                              " (it is printed on their posters)")
        if not referent.communities:
            raise ConfigError(f"{where}.communities: at least one community key")


ORGANISATION_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def _check_organisations(config: Config, path: Path) -> None:
    """Keys unique and plain, every field filled, each person in one organisation; with
    organisations, staff are listed under theirs (``roles.*`` would belong to none).
    Territories are perimeters, checked against the communes when the bot starts."""
    if not config.organisations:
        return
    roles = config.roles
    if roles.admins or roles.operators or roles.officers:
        raise ConfigError(f"{path}: roles.admins, roles.operators, roles.officers: with "
                          "organisations, list staff under their organisation "
                          "(organisations[N].admins, .operators, .officers)")
    keys: set[str] = set()
    members: dict[str, str] = {}
    for index, organisation in enumerate(config.organisations):
        where = f"organisations[{index}]"
        if not ORGANISATION_KEY.fullmatch(organisation.key):
            raise ConfigError(f"{path}: {where}.key: 1 to 32 lowercase letters, digits, - or _"
                              f", got {organisation.key!r}")
        if organisation.key in keys:
            raise ConfigError(f"{path}: {where}.key: {organisation.key!r} is listed twice")
        keys.add(organisation.key)
        for name in ("name", "signature", "territory"):
            value = getattr(organisation, name)
            if not value.strip() or len(value) > (STAFF_NAME_CHARS if name != "territory"
                                                  else 2000):
                raise ConfigError(f"{path}: {where}.{name}: required (1 to "
                                  f"{STAFF_NAME_CHARS} characters)")
        if organisation.cap_sender and not re.fullmatch(r"[^\s,<&]+", organisation.cap_sender):
            raise ConfigError(f"{path}: {where}.cap_sender: no spaces, ',', '<' or '&'")
        for platform, chat in organisation.officers_channels.items():
            if platform == "matrix" and not chat.startswith("!"):
                raise ConfigError(f"{path}: {where}.officers_channels.matrix: the room id "
                                  f"(!…:server), not an alias, got {chat!r}")
            if not chat.strip():
                raise ConfigError(f"{path}: {where}.officers_channels.{platform}: empty")
            if platform == "telegram" and not re.fullmatch(r"-?\d{1,20}", chat):
                raise ConfigError(f"{path}: {where}.officers_channels.telegram: the group's "
                                  f"numeric chat id (e.g. -1001234567890), got {chat!r}")
        for role in ("admins", "operators", "officers"):
            for item, identity in enumerate(getattr(organisation, role)):
                if not is_platform_id(identity):
                    raise ConfigError(f"{path}: {where}.{role}[{item}]: {identity!r} is not "
                                      f"PLATFORM:ID ({PLATFORM_ID_EXAMPLES})")
                other = members.setdefault(identity, organisation.key)
                if other != organisation.key:
                    raise ConfigError(f"{path}: {where}.{role}[{item}]: {identity} already "
                                      f"belongs to organisation {other!r}")


MIN_SECRET_KEY = 32


def _check_whatsapp(whatsapp: WhatsAppConfig, path: Path) -> None:
    if whatsapp.cost_per_message < 0:
        raise ConfigError(f"{path}: whatsapp.cost_per_message: euros, 0 or more")
    if not whatsapp.enabled:
        return
    for key in ("phone_number_id", "access_token", "app_secret", "verify_token"):
        if not getattr(whatsapp, key):
            raise ConfigError(f"{path}: whatsapp.{key}: required when whatsapp.enabled is true")
    if not whatsapp.phone_number_id.isdigit():
        raise ConfigError(f"{path}: whatsapp.phone_number_id: the digits of the Phone Number "
                          "ID (Meta's WhatsApp Manager, not the phone number)")
    number = whatsapp.display_phone_number
    if number and not (number.isascii() and number.isdigit() and 8 <= len(number) <= 15):
        raise ConfigError(f"{path}: whatsapp.display_phone_number: the number's digits with "
                          f"the country code, no + or spaces (e.g. 33612345678), got {number!r}")
    try:
        MonitoringConfig(whatsapp.webhook_listen).address()
    except ValueError:
        raise ConfigError(f"{path}: whatsapp.webhook_listen: HOST:PORT, got "
                          f"{whatsapp.webhook_listen!r}") from None
    if not whatsapp.webhook_path.startswith("/"):
        raise ConfigError(f"{path}: whatsapp.webhook_path: a path starting with /")


def _check_secret_key(config: Config, path: Path) -> None:
    """Real people need a real key (bot/keys.py); its value is never printed."""
    key = config.secret_key
    if key and len(key) < MIN_SECRET_KEY:
        raise ConfigError(f"{path}: secret_key: {len(key)} characters, at least "
                          f"{MIN_SECRET_KEY} needed (generate one: openssl rand -hex 32)")
    if not key and (config.telegram.enabled or config.matrix.enabled
                    or config.whatsapp.enabled):
        raise ConfigError(f"{path}: secret_key: required when telegram, matrix or whatsapp is "
                          "enabled "
                          "(set ALERTE_BOT_SECRET_KEY; generate one: openssl rand -hex 32)")


def _check_bundled_files(config: Config, path: Path) -> None:
    """A ``bundled:`` name that the bot does not ship is a typo: say which names exist."""
    named = [("communities", config.communities), ("categories", config.categories)]
    named += [(f"geo.communes[{i}]", f) for i, f in enumerate(config.geo.communes)]
    for key, configured in named:
        if is_bundled(configured) and not config.resolve(configured).is_file():
            raise ConfigError(f"{path}: {key}: {configured!r} is not a file shipped with the "
                              f"bot (shipped: {', '.join(shipped_data_files())})")


def shipped_data_files() -> list[str]:
    """``bundled:`` names of the data files the bot ships (not its example configurations)."""
    root = bundled("")
    data = [p for p in root.rglob("*") if p.suffix in (".yaml", ".geojson")]
    names = sorted(str(p.relative_to(root)) for p in data if p.parent != root or
                   p.name in ("categories.yaml", "communities.yaml"))
    return [f"bundled:{name}" for name in names]


def _check_monitoring(monitoring: MonitoringConfig, path: Path) -> None:
    if monitoring.listen:
        try:
            monitoring.address()
        except ValueError:
            raise ConfigError(f"{path}: monitoring.listen: expected HOST:PORT (e.g. "
                              f"127.0.0.1:9464) or nothing, got {monitoring.listen!r}") from None
    if not monitoring.max_outbox_age_seconds > 0:
        raise ConfigError(f"{path}: monitoring.max_outbox_age_seconds: must be more than 0")
