"""The systemd units of deploy/ start what docs/deploy.md says they start.

The units name the paths of the deployment guide (/opt/alerte-bot/venv, /etc/alerte-bot,
/var/lib/alerte-bot, /var/backups/alerte-bot); each test puts this test run's virtualenv and
temporary folders in their place and runs the command lines as systemd would."""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.starter import init_site

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
INSTALLED_COMMAND = "/opt/alerte-bot/venv/bin/alerte-bot"
CONFIG = "/etc/alerte-bot/bot.yaml"
BACKUPS = "/var/backups/alerte-bot"


def unit_values(name: str, key: str) -> list[str]:
    """Every value of ``key`` in the unit file (systemd allows a key several times)."""
    lines = (DEPLOY / name).read_text(encoding="utf-8").splitlines()
    return [line.split("=", 1)[1] for line in lines if line.startswith(f"{key}=")]


def systemd_unescaped(command: str) -> str:
    """What systemd runs: $$ is a literal $, %% a literal %."""
    return command.replace("$$", "$").replace("%%", "%")


def local_command(command: str, replacements: dict[str, str]) -> list[str]:
    for deployed, local in replacements.items():
        command = command.replace(deployed, local)
    return shlex.split(systemd_unescaped(command))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The configuration `alerte-bot init` writes, database in a temporary state folder."""
    return init_site(tmp_path / "etc", ["70"], database=str(tmp_path / "state" / "bot.sqlite3"))


def alerte_bot() -> str:
    return str(Path(sys.executable).parent / "alerte-bot")


def test_service_execstart_starts_the_bot_in_check_mode(site: Path) -> None:
    (command,) = unit_values("alerte-bot.service", "ExecStart")
    assert command == f"{INSTALLED_COMMAND} --config {CONFIG} run"
    argv = local_command(command, {INSTALLED_COMMAND: alerte_bot(), CONFIG: str(site)})
    assert argv[-1] == "run"
    done = subprocess.run([*argv[:-1], "check"], capture_output=True, text=True, timeout=60,
                          cwd=site.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ok", "configuration:", str(site), "valid", "(no", "platform",
                                "enabled;", "database", str(site.parent.parent / "state" /
                                                            "bot.sqlite3") + ")"]
    assert lines[-1].startswith("no problem")


def test_service_reads_the_configuration_init_writes_and_its_secrets(site: Path) -> None:
    (environment,) = unit_values("alerte-bot.service", "EnvironmentFile")
    assert Path(environment).parent == Path(CONFIG).parent
    template = (DEPLOY / "alerte-bot.env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"\$\{([A-Z_]+)", site.read_text(encoding="utf-8")))
    assert named <= set(re.findall(r"^([A-Z_]+)=", template, re.MULTILINE))


def test_service_does_not_restart_on_a_broken_configuration(tmp_path: Path) -> None:
    assert unit_values("alerte-bot.service", "Restart") == ["on-failure"]
    (prevented,) = unit_values("alerte-bot.service", "RestartPreventExitStatus")
    broken = tmp_path / "bot.yaml"
    broken.write_text("telegram:\n  enabled: yes please\n", encoding="utf-8")
    done = subprocess.run([alerte_bot(), "--config", str(broken), "run"], capture_output=True,
                          text=True, timeout=60)
    assert str(done.returncode) == prevented, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_service_is_hardened() -> None:
    text = (DEPLOY / "alerte-bot.service").read_text(encoding="utf-8")
    for option in ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                   "PrivateTmp=yes", "CapabilityBoundingSet=\n", "StateDirectory=alerte-bot",
                   "User=alerte-bot", "SystemCallFilter=@system-service"]:
        assert option in text, option


def test_backup_execstart_writes_a_dated_backup_and_prunes_old_ones(site: Path,
                                                                    tmp_path: Path) -> None:
    subprocess.run([alerte_bot(), "--config", str(site), "audit", "verify"], check=True,
                   capture_output=True, timeout=60)  # creates and migrates the database
    backups = tmp_path / "backups"
    backups.mkdir()
    replacements = {INSTALLED_COMMAND: alerte_bot(), CONFIG: str(site), BACKUPS: str(backups)}
    (command,) = unit_values("alerte-bot-backup.service", "ExecStart")
    subprocess.run(local_command(command, replacements), check=True, capture_output=True,
                   timeout=60)
    (written,) = backups.iterdir()
    assert re.fullmatch(r"bot-\d{8}-\d{4}.*\.sqlite3", written.name), written.name
    with sqlite3.connect(written) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    (prune,) = unit_values("alerte-bot-backup.service", "ExecStartPost")
    subprocess.run(local_command(prune, replacements), check=True, timeout=60)
    assert written.exists()  # today's backup is kept


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian's systemd package)")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for unit in DEPLOY.glob("alerte-bot*.[st]*"):
        text = unit.read_text(encoding="utf-8").replace(INSTALLED_COMMAND, alerte_bot())
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    units = sorted(str(p) for p in tmp_path.iterdir())
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *units],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_deployment_guide_names_every_file_of_deploy() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for path in DEPLOY.iterdir():
        assert path.name in guide, path.name
