"""Configuration loading (bot/config.py), the reference data files (bot/reference.py),
config/base-config.yaml and the exit code of ``run_bot.py`` on a broken configuration."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import (
    FROM_LOADING,
    BroadcastConfig,
    Config,
    ConfigError,
    ConsoleConfig,
    GeoConfig,
    PlatformRateLimits,
    RolesConfig,
    TelegramConfig,
    load_config,
    shipped_data_files,
)
from bot.reference import load_reference
from bot.resources import bundled

ROOT = Path(__file__).resolve().parent.parent
BASE_CONFIG = ROOT / "config" / "base-config.yaml"
COMMUNITIES = ROOT / "config" / "communities.yaml"
CATEGORIES = ROOT / "config" / "categories.yaml"
KEYED = "secret_key: 0123456789abcdef0123456789abcdef\n"  # a platform needs one


def write(folder: Path, text: str, name: str = "bot.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path, environ: dict[str, str] | None = None) -> str:
    """The ConfigError message; it must be one line starting with the file name."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, {} if environ is None else environ)
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith(f"{path}: "), message
    return message


def without_base_dir(config: Config) -> Config:
    """The configuration as written in the file (base_dir and source come from loading)."""
    return dataclasses.replace(config, base_dir=Config().base_dir, source=Config().source)


def config_fields(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted key, type) of a config dataclass, recursively; base_dir and source
    excluded (set by loading)."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if item.name in FROM_LOADING:
            continue
        key = f"{prefix}{item.name}"
        yield key, hints[item.name]
        if dataclasses.is_dataclass(hints[item.name]):
            yield from config_fields(hints[item.name], key + ".")


def lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        assert isinstance(data, dict) and part in data, f"{dotted}: missing at {part!r}"
        data = data[part]
    return data


# --- defaults ------------------------------------------------------------------------


def test_dataclass_defaults() -> None:
    config = Config()
    assert config.database == "var/bot.sqlite3"
    assert config.language == "fr"
    assert config.timezone == "Europe/Paris"
    assert config.roles == RolesConfig([], [], [])
    assert config.console.enabled is True
    assert config.console.officers_channel == "#officiers"
    assert config.telegram.enabled is False and config.telegram.token == ""
    assert config.telegram.mode == "polling"
    assert config.telegram.officers_chat_id is None
    assert config.matrix.enabled is False
    assert config.broadcast.max_attempts == 5
    assert config.conversation.timeout_minutes == 30
    assert config.geo.max_radius_km == 200.0
    assert config.rate_limits.telegram == PlatformRateLimits(30.0, 1.0, 20.0)
    assert config.rate_limits.matrix == PlatformRateLimits(50.0, 5.0, 300.0)
    # default_factory: two configs never share a mutable list
    assert Config().geo.communes is not Config().geo.communes


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_file_gives_defaults(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text), {})
    assert without_base_dir(config) == Config()


def test_partial_section_keeps_other_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "telegram:\n  poll_timeout: 10\n"), {})
    assert config.telegram == dataclasses.replace(TelegramConfig(), poll_timeout=10)
    assert config.console == ConsoleConfig()


def test_relative_paths_are_read_from_the_files_own_folder(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    inside = load_config(write(tmp_path / "config", ""), {})
    assert Path(inside.base_dir) == tmp_path.resolve() / "config"
    assert inside.resolve("var/bot.sqlite3") == tmp_path.resolve() / "config/var/bot.sqlite3"
    assert inside.resolve("../var/bot.sqlite3") == tmp_path.resolve() / "config/../var/bot.sqlite3"
    assert inside.resolve("/srv/bot.sqlite3") == Path("/srv/bot.sqlite3")
    elsewhere = load_config(write(tmp_path, ""), {})
    assert Path(elsewhere.base_dir) == tmp_path.resolve()


def test_relative_paths_do_not_depend_on_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = write(tmp_path / "etc", "database: data/bot.sqlite3\n")
    monkeypatch.chdir(tmp_path)
    from_parent = load_config(Path("etc") / config_file.name, {})
    monkeypatch.chdir(tmp_path / "etc")
    from_folder = load_config(Path(config_file.name), {})
    expected = tmp_path.resolve() / "etc/data/bot.sqlite3"
    assert from_parent.resolve(from_parent.database) == expected
    assert from_folder.resolve(from_folder.database) == expected


def test_bundled_names_are_files_shipped_in_the_package(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), {})
    assert config.resolve(config.categories) == bundled("categories.yaml")
    assert config.resolve(config.categories).is_file()
    assert all(config.resolve(path).is_file() for path in config.geo.communes)
    assert "bundled:geo/communes-70.geojson" in shipped_data_files()
    assert "bundled:demo.yaml" not in shipped_data_files()


def test_unknown_bundled_name_is_refused_naming_what_ships(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "geo:\n  communes: [bundled:geo/communes-25.geojson]\n"))
    assert "geo.communes[0]: 'bundled:geo/communes-25.geojson' is not a file shipped" in message
    assert "bundled:geo/communes-70.geojson" in message


def test_base_dir_cannot_be_set_from_the_file(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "base_dir: /etc\n"))
    assert "base_dir: unknown key" in message
    assert "source: unknown key" in load_error(write(tmp_path, "source: /etc/x.yaml\n"))


def test_the_configuration_knows_its_file(tmp_path: Path) -> None:
    path = write(tmp_path, "language: fr\n")
    assert load_config(path, {}).source == str(path)


def test_shipped_configurations_load() -> None:
    production = load_config(ROOT / "config" / "bot.yaml", {})
    assert production.telegram.token == "" and production.matrix.access_token == ""
    assert production.resolve(production.database) == ROOT / "config/../var/bot.sqlite3"
    demo = load_config(ROOT / "config" / "demo.yaml", {})
    # Its staff belong to its organisations (issue 16): the gendarmerie's as before.
    gendarmerie = demo.organisations[0]
    assert gendarmerie.operators == ["console:operateur"]
    assert len(gendarmerie.officers) == 2
    assert [o.key for o in demo.organisations] == ["gendarmerie", "police", "prefecture"]


# --- environment interpolation ---------------------------------------------------------


def test_env_variable_is_substituted(tmp_path: Path) -> None:
    path = write(tmp_path, 'telegram:\n  token: "${TOKEN}"\n  base_url: "http://${HOST}:8081/bot"\n')
    config = load_config(path, {"TOKEN": "123:abc", "HOST": "bot-api"})
    assert config.telegram.token == "123:abc"
    assert config.telegram.base_url == "http://bot-api:8081/bot"


def test_env_default_used_only_when_unset(tmp_path: Path) -> None:
    path = write(tmp_path, 'database: "${DB:-var/other.sqlite3}"\nmatrix:\n'
                           '  access_token: "${MATRIX_ACCESS_TOKEN:-}"\n')
    unset = load_config(path, {})
    assert unset.database == "var/other.sqlite3"
    assert unset.matrix.access_token == ""
    set_ = load_config(path, {"DB": "/srv/alertes.sqlite3", "MATRIX_ACCESS_TOKEN": "syt_x"})
    assert set_.database == "/srv/alertes.sqlite3"
    assert set_.matrix.access_token == "syt_x"
    # an empty value is a value: the default does not replace it
    assert load_config(path, {"DB": ""}).database == ""


def test_env_values_are_converted_to_the_field_type(tmp_path: Path) -> None:
    path = write(tmp_path, KEYED + "telegram:\n  enabled: ${TG_ON}\n  token: t\n"
                           "  webhook_port: ${PORT}\n  officers_chat_id: ${CHAT}\n"
                           "roles:\n  operators: ['telegram:${OPERATOR}']\n")
    config = load_config(path, {"TG_ON": "true", "PORT": "8443", "CHAT": "-1001234567890",
                                "OPERATOR": "42"})
    assert config.telegram.enabled is True
    assert config.telegram.webhook_port == 8443
    assert config.telegram.officers_chat_id == -1001234567890
    assert config.roles.operators == ["telegram:42"]


def test_env_value_is_not_reinterpreted(tmp_path: Path) -> None:
    path = write(tmp_path, 'telegram:\n  token: "${TOKEN}"\n')
    assert load_config(path, {"TOKEN": "${OTHER}"}).telegram.token == "${OTHER}"


def test_process_environment_is_the_default(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTE_TEST_TOKEN", "from-os-environ")
    path = write(tmp_path, 'telegram:\n  token: "${ALERTE_TEST_TOKEN}"\n')
    assert load_config(path).telegram.token == "from-os-environ"


def test_missing_env_variable_names_file_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'telegram:\n  token: "${TELEGRAM_BOT_TOKEN}"\n')
    message = load_error(path)
    assert "telegram.token" in message
    assert "TELEGRAM_BOT_TOKEN" in message


def test_missing_env_variable_in_a_list_names_the_item(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "roles:\n  officers: [telegram:1, '${CHEF}']\n"))
    assert "roles.officers[1]" in message and "CHEF" in message


# --- unknown keys and wrong types ------------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    ("databse: var/x.sqlite3\n", "databse"),
    ("telegram:\n  tokn: abc\n", "telegram.tokn"),
    ("rate_limits:\n  telegram:\n    global_per_secnd: 5\n",
     "rate_limits.telegram.global_per_secnd"),
    ("rate_limits:\n  signal: {}\n", "rate_limits.signal"),
])
def test_unknown_key_is_refused_with_its_full_name(tmp_path: Path, text: str, key: str) -> None:
    message = load_error(write(tmp_path, text))
    assert f": {key}: unknown key" in message


@pytest.mark.parametrize(("text", "key", "expected"), [
    ('broadcast:\n  max_attempts: "many"\n', "broadcast.max_attempts", "whole number"),
    ("broadcast:\n  max_attempts: 2.5\n", "broadcast.max_attempts", "whole number"),
    ("broadcast:\n  max_attempts: true\n", "broadcast.max_attempts", "whole number"),
    ('roles:\n  operators: "x"\n', "roles.operators", "expected a list"),
    ("roles:\n  operators: [[telegram:1]]\n", "roles.operators[0]", "expected text"),
    ("telegram:\n  enabled: yes please\n", "telegram.enabled", "true or false"),
    ("telegram:\n  enabled: 1\n", "telegram.enabled", "true or false"),
    ("geo:\n  max_radius_km: far\n", "geo.max_radius_km", "a number"),
    ("geo: [a, b]\n", "geo", "expected a mapping"),
    ("console:\n  identities: [a]\n", "console.identities", "expected a mapping"),
    ("telegram:\n  officers_chat_id: general\n", "telegram.officers_chat_id", "whole number"),
])
def test_wrong_type_names_key_and_expectation(tmp_path: Path, text: str, key: str,
                                              expected: str) -> None:
    message = load_error(write(tmp_path, text))
    assert f": {key}: " in message
    assert expected in message


def test_lenient_scalar_conversions(tmp_path: Path) -> None:
    path = write(tmp_path, "consent_version: 2027\ngeo:\n  max_radius_km: 50\n"
                           "telegram:\n  officers_chat_id: null\nroles:\n  admins: null\n")
    config = load_config(path, {})
    assert config.consent_version == "2027"
    assert config.geo == dataclasses.replace(GeoConfig(), max_radius_km=50.0)
    assert isinstance(config.geo.max_radius_km, float)
    assert config.telegram.officers_chat_id is None
    assert config.roles.admins == []


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "top level must be a mapping" in load_error(write(tmp_path, "- a\n- b\n"))


# --- semantic checks ------------------------------------------------------------------


@pytest.mark.parametrize(("role", "identities", "index", "bad"), [
    ("operators", ["alice"], 0, "alice"),
    ("officers", ["telegram:1", "@bob:example.org"], 1, "@bob:example.org"),
    ("admins", ["whatsapp:33600000000"], 0, "whatsapp:33600000000"),
    ("operators", ["telegram:"], 0, "telegram:"),
    # Names people choose, not ids the platform assigns (review issue 12, item 12):
    ("officers", ["telegram:@alice"], 0, "telegram:@alice"),
    ("officers", ["telegram:-1001234"], 0, "telegram:-1001234"),  # a group, not a person
    ("admins", ["matrix:alice"], 0, "matrix:alice"),
    ("admins", ["matrix:@alice"], 0, "matrix:@alice"),
    ("operators", ["matrix:@Alice Dupont:example.org"], 0, "matrix:@Alice Dupont:example.org"),
])
def test_identity_without_platform_is_refused(tmp_path: Path, role: str,
                                              identities: list[str], index: int,
                                              bad: str) -> None:
    path = write(tmp_path, yaml.safe_dump({"roles": {role: identities}}))
    message = load_error(path)
    assert f"roles.{role}[{index}]" in message
    assert repr(bad) in message
    assert "PLATFORM:ID" in message
    assert "not @username" in message and "matrix:@alice:example.org" in message


def test_valid_identities_are_accepted(tmp_path: Path) -> None:
    roles = {"admins": ["console:admin"], "operators": ["telegram:123456789"],
             "officers": ["matrix:@officier:gendarmerie.example",
                          "matrix:@ops.cor_g=70:matrix.example:8448"]}
    config = load_config(write(tmp_path, yaml.safe_dump({"roles": roles})), {})
    assert config.roles == RolesConfig(**roles)


@pytest.mark.parametrize(("text", "key"), [
    ("language: de\n", "language"),
    ("telegram:\n  enabled: true\n", "telegram.token"),
    ("telegram:\n  mode: push\n", "telegram.mode"),
    ("matrix:\n  enabled: true\n  access_token: x\n", "matrix.homeserver"),
    ("matrix:\n  enabled: true\n  homeserver: https://m.example\n  user_id: '@b:m.example'\n",
     "matrix.access_token"),
    ("broadcast:\n  max_attempts: 0\n", "broadcast.max_attempts"),
    ("broadcast:\n  in_flight: 0\n", "in_flight"),
    ("broadcast:\n  resolution_slice: 0\n", "resolution_slice"),
    ("broadcast:\n  batch_size: 200\n", "broadcast.batch_size: unknown key (now "
                                          "broadcast.resolution_slice"),
])
def test_inconsistent_settings_are_refused(tmp_path: Path, text: str, key: str) -> None:
    assert key in load_error(write(tmp_path, text))


def test_enabled_platforms_with_credentials_load(tmp_path: Path) -> None:
    path = write(tmp_path, KEYED + "telegram:\n  enabled: true\n  token: '${T}'\n"
                                   "  mode: webhook\n"
                                   "matrix:\n  enabled: true\n  homeserver: https://m.example\n"
                                   "  user_id: '@bot:m.example'\n  password: '${P}'\n")
    config = load_config(path, {"T": "1:x", "P": "secret"})
    assert config.telegram.enabled and config.telegram.mode == "webhook"
    assert config.matrix.enabled and config.matrix.password == "secret"


# --- unreadable files -----------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == f"{path}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert str(caught.value).startswith(f"{tmp_path}: cannot read")


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "language: fr\ntelegram:\n  token: [unclosed\n  mode: polling\n")
    message = load_error(path)
    match = re.search(r"invalid YAML at line (\d+)", message)
    assert match is not None, message
    assert int(match.group(1)) in (3, 4)  # the bracket opens on 3, the error shows on 4


def test_tab_indentation_reports_the_line(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "language: fr\ntelegram:\n\ttoken: x\n"))
    assert "invalid YAML at line 3" in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_bytes("console:\n  officers_channel: '#officiers-gendarmerie'\n# é\n"
                     .encode("latin-1"))
    assert "bot.yaml" in load_error(path)


# Nine levels of nine aliases: 387 million "lol" from a few hundred bytes.
BILLION_LAUGHS = 'a: &a ["lol"' + ', "lol"' * 8 + "]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + below] * 9)}]\n"
    for below, name in zip("abcdefgh", "bcdefghi", strict=True))


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    message = load_error(write(tmp_path, BILLION_LAUGHS))
    assert time.monotonic() - started < 1
    assert "line 2: YAML aliases (*name) are not allowed" in message


def test_anchors_without_aliases_are_harmless(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "language: &lang en\n"), {})
    assert config.language == "en"


def test_float_field_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "geo:\n  max_radius_km: ${RADIUS}\n")
    assert load_config(path, {"RADIUS": "150"}).geo.max_radius_km == 150.0


# --- run_bot.py -------------------------------------------------------------------------


def run_bot(*arguments: str) -> tuple[subprocess.CompletedProcess[str], float]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM", "MATRIX"))}
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), *arguments],
                          cwd=ROOT, env=environ, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


@pytest.mark.parametrize(("text", "expected"), [
    ("telegram:\n  tokn: abc\n", "telegram.tokn"),
    ("broadcast:\n  max_attempts: many\n", "broadcast.max_attempts"),
    ("telegram:\n  token: '${ALERTE_TEST_UNSET_VARIABLE}'\n", "telegram.token"),
])
def test_run_bot_exits_2_on_config_error(tmp_path: Path, text: str, expected: str) -> None:
    database = tmp_path / "var" / "never.sqlite3"
    path = write(tmp_path, f"database: {database}\n{text}", name="bad.yaml")
    done, elapsed = run_bot("--config", str(path))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "bad.yaml" in lines[0] and expected in lines[0]
    assert done.stdout == ""  # the console never started: no help banner
    assert not database.parent.exists()  # nor the database
    assert elapsed < 30


def test_run_bot_exits_2_on_missing_config_file(tmp_path: Path) -> None:
    done, _ = run_bot("--config", str(tmp_path / "nowhere.yaml"), "demo")
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'nowhere.yaml'}: file not found"


# --- config/base-config.yaml ------------------------------------------------------------


def test_walker_sees_nested_fields() -> None:
    keys = dict(config_fields(Config))
    assert "rate_limits.matrix.per_group_per_minute" in keys
    assert "telegram.officers_chat_id" in keys
    assert "base_dir" not in keys and "source" not in keys
    assert len(keys) > 50


def test_base_config_lists_every_field() -> None:
    data = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    missing = []
    for key, hint in config_fields(Config):
        try:
            value = lookup(data, key)
        except AssertionError:
            missing.append(key)
            continue
        if dataclasses.is_dataclass(hint):
            assert isinstance(value, dict), f"{key}: must be a section"
    assert missing == [], f"base-config.yaml lacks {missing}"


def test_base_config_loads_at_default_values() -> None:
    config = load_config(BASE_CONFIG, {})
    assert Path(config.base_dir) == ROOT / "config"
    assert without_base_dir(config) == Config()


def test_base_config_takes_secrets_from_environment() -> None:
    text = BASE_CONFIG.read_text(encoding="utf-8")
    assert '"${TELEGRAM_BOT_TOKEN:-}"' in text
    assert '"${MATRIX_ACCESS_TOKEN:-}"' in text
    config = load_config(BASE_CONFIG, {"TELEGRAM_BOT_TOKEN": "123:abc",
                                       "MATRIX_ACCESS_TOKEN": "syt_abc"})
    assert config.telegram.token == "123:abc"
    assert config.matrix.access_token == "syt_abc"


def test_base_config_comments_every_key() -> None:
    uncommented = []
    previous = ""
    for number, line in enumerate(BASE_CONFIG.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        is_key = re.match(r"^\s*[a-z_]+:", line) is not None
        if is_key and not previous.startswith("#") and " # " not in line:
            uncommented.append(f"line {number}: {stripped}")
        if stripped:
            previous = stripped
    assert uncommented == []


# --- reference data: communities and categories ------------------------------------------


def test_seeded_communities() -> None:
    reference = load_reference(COMMUNITIES, CATEGORIES)
    expected = {"commercant", "artisan", "industriel", "agriculteur", "elu", "equide",
                "citoyen"}
    assert expected <= set(reference.communities)
    for community in reference.communities.values():
        assert community.label and community.description
    assert reference.communities["elu"].label == "Élus"
    assert reference.community("Commerçants") is reference.communities["commercant"]
    assert reference.community("ÉLUS") is reference.communities["elu"]
    assert reference.community("pompier") is None


def test_seeded_categories() -> None:
    categories = load_reference(COMMUNITIES, CATEGORIES).categories
    assert {"vol", "cambriolage", "agression", "escroquerie", "prevention", "disparition",
            "crue"} <= set(categories)
    for crime in ("vol", "cambriolage", "agression", "escroquerie"):
        assert categories[crime].max_fact_age == timedelta(minutes=60), crime
        assert categories[crime].all_communities is False, crime
    disparition = categories["disparition"]
    assert disparition.required_approvals == 2
    assert disparition.all_communities is True
    assert disparition.max_fact_age is None
    assert categories["crue"].all_communities is True
    assert categories["prevention"].severity == "low"
    assert categories["prevention"].max_fact_age is None
    assert categories["cambriolage"].default_expiry == timedelta(hours=24)
    for category in categories.values():
        assert category.severity in ("low", "medium", "high")
        assert category.required_approvals >= 1
    assert load_reference(COMMUNITIES, CATEGORIES).category("Prévention") == categories[
        "prevention"]


CATEGORY = {"key": "vol", "label": "Vol", "severity": "medium", "max_fact_age_minutes": 60,
            "default_expiry_hours": 24, "required_approvals": 1, "all_communities": False,
            "protected": False}


def category_error(tmp_path: Path, *entries: dict[str, Any]) -> str:
    path = write(tmp_path, yaml.safe_dump({"categories": list(entries)}), "categories.yaml")
    with pytest.raises(ConfigError) as caught:
        load_reference(COMMUNITIES, path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def test_reference_category_template_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, yaml.safe_dump({"categories": [CATEGORY]}), "categories.yaml")
    assert load_reference(COMMUNITIES, path).categories["vol"].severity == "medium"


@pytest.mark.parametrize(("change", "expected"), [
    ({"colour": "red"}, "categories[1].colour: unknown key"),
    ({"severity": "critical"}, "categories[1].severity: one of low, medium, high"),
    ({"required_approvals": "two"}, "categories[1].required_approvals: expected int"),
    ({"required_approvals": True}, "categories[1].required_approvals: expected int"),
    ({"required_approvals": 0}, "expiry and approvals must be at least 1"),
    ({"default_expiry_hours": None}, "expiry and approvals must be at least 1"),
    ({"all_communities": "yes"}, "categories[1].all_communities: expected bool"),
    ({"key": "Vol-2"}, "categories[1].key: lowercase letters"),
])
def test_reference_bad_category(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    second = {**CATEGORY, "key": "cambriolage", **change}
    assert expected in category_error(tmp_path, CATEGORY, second)


def test_reference_category_missing_field(tmp_path: Path) -> None:
    entry = {k: v for k, v in CATEGORY.items() if k != "severity"}
    assert "categories[0].severity: missing" in category_error(tmp_path, entry)


def test_reference_empty_list(tmp_path: Path) -> None:
    path = write(tmp_path, "categories: []\n", "categories.yaml")
    with pytest.raises(ConfigError, match=r"categories: expected a non-empty list"):
        load_reference(COMMUNITIES, path)


def test_reference_unknown_community_key(tmp_path: Path) -> None:
    path = write(tmp_path, "communities:\n  - key: elu\n    label: Élus\n    descr: x\n",
                 "communities.yaml")
    with pytest.raises(ConfigError) as caught:
        load_reference(path, CATEGORIES)
    assert str(caught.value) == f"{path}: communities[0].descr: unknown key"


def test_reference_missing_file(tmp_path: Path) -> None:
    absent = tmp_path / "categories.yaml"
    with pytest.raises(ConfigError) as caught:
        load_reference(COMMUNITIES, absent)
    assert str(caught.value) == f"{absent}: file not found"


def test_reference_invalid_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "communities:\n  - key: [elu\n", "communities.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_reference(path, CATEGORIES)


def test_reference_files_refuse_aliases(tmp_path: Path) -> None:
    path = write(tmp_path, BILLION_LAUGHS + "communities: *i\n", "communities.yaml")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"communities\.yaml: line 2: YAML aliases"):
        load_reference(path, CATEGORIES)
    assert time.monotonic() - started < 1


def test_reference_duplicate_key_is_refused(tmp_path: Path) -> None:
    stricter = {**CATEGORY, "required_approvals": 2}
    assert "vol" in category_error(tmp_path, CATEGORY, stricter)


def test_telegram_connections_follow_the_in_flight_window(tmp_path: Path) -> None:
    from bot.main import telegram_connections

    assert telegram_connections(load_config(write(tmp_path, ""), {})) == 128
    wide = load_config(write(tmp_path, "broadcast:\n  in_flight: 200\n"), {})
    assert telegram_connections(wide) == 416
    paid = load_config(write(tmp_path, "rate_limits:\n  telegram:\n"
                                       "    global_per_second: 1000\n"), {})
    assert telegram_connections(paid) == 216  # 2 × 100 in flight + 16


@pytest.mark.parametrize(("rate", "expected"), [(30, 8), (1000, 100), (333, 34), (5000, 128)])
def test_in_flight_follows_the_rate_unless_set(rate: float, expected: int) -> None:
    limits = PlatformRateLimits(global_per_second=rate)
    assert BroadcastConfig().in_flight_for(limits) == expected
    assert BroadcastConfig(in_flight=32).in_flight_for(limits) == 32
