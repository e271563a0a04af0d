"""The bot installs anywhere: a lock of registry pins, every import declared, and a wheel
that runs outside the repository (``alerte-bot`` and ``python -m bot``)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# A comment, a blank line, or name==version naming a registry release: no URL, no path.
LOCK_LINE = re.compile(r"^(#.*|[A-Za-z0-9_.\-\[\],]+==[^ @;]+)?$")
# Our own top-level packages.
NOT_DISTRIBUTIONS = {"bot", "tests", "benchmarks"}


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[ <>=!~\[;]", requirement, maxsplit=1)[0])


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> set[str]:
    project = PYPROJECT["project"]
    names = {requirement_name(r) for r in project["dependencies"]}
    for extra in extras:
        names |= {requirement_name(r) for r in project["optional-dependencies"][extra]}
    return names


def third_party_imports(*folders: str) -> set[str]:
    modules: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            modules |= top_level_imports(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in modules
            if m not in sys.stdlib_module_names and m not in NOT_DISTRIBUTIONS}


def top_level_imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def distributions_of(modules: set[str]) -> dict[str, set[str]]:
    owners = metadata.packages_distributions()
    return {module: {canonical(d) for d in owners.get(module, [])} for module in modules}


# --- the lock ----------------------------------------------------------------------------


def test_every_lock_line_is_a_registry_pin() -> None:
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    wrong = [line for line in lines if not LOCK_LINE.match(line)]
    assert wrong == []
    assert sum(1 for line in lines if "==" in line) > 50


def test_lock_check_refuses_local_files_and_urls() -> None:
    for line in ["aiolimiter @ file:///tmp/al/aiolimiter-1.3.0-py3-none-any.whl",
                 "bot @ git+https://example.org/bot.git", "-e .", "./wheels/x.whl",
                 "numpy>=2", "numpy==2.4.6 ; sys_platform == 'win32'"]:
        assert not LOCK_LINE.match(line), line


def test_lock_pins_every_declared_package() -> None:
    pinned = {canonical(line.split("==")[0])
              for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
              if "==" in line}
    extras = list(PYPROJECT["project"]["optional-dependencies"])
    assert declared(*extras) - pinned == set()


# --- declared dependencies -----------------------------------------------------------------


def test_every_module_the_bot_imports_is_a_runtime_dependency() -> None:
    owners = distributions_of(third_party_imports("bot"))
    undeclared = {m: d for m, d in owners.items() if not d & declared()}
    assert undeclared == {}


def test_every_module_tests_and_benchmarks_import_is_declared() -> None:
    owners = distributions_of(third_party_imports("tests", "benchmarks"))
    everything = declared("test", "matrix-test")
    assert {m: d for m, d in owners.items() if not d & everything} == {}


def test_every_runtime_dependency_is_imported_by_the_bot() -> None:
    imported = set().union(*distributions_of(third_party_imports("bot")).values())
    assert declared() - imported == set()


def test_the_package_list_names_every_folder_of_code() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bot").rglob("*.py")}
    assert folders <= listed
    assert listed - folders == {"bot.migrations", "bot.defaults"}


# --- the wheel, installed outside the repository -------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built offline from a copy of the sources, as `pip wheel .` would on a new machine."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "var", "__pycache__", "*.egg-info", "build", ".*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(folder), str(source)],
                   check=True, capture_output=True, timeout=180)
    (built,) = folder.glob("alerte_bot-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel; its dependencies are read from this test run's
    environment (a path line, so that environment's editable install is not loaded)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=120)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], check=True, capture_output=True, text=True).stdout
    (Path(site.strip()) / "dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return venv


def run_in(venv: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / command[0]), *command[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_wheel_ships_migrations_data_and_configuration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for migration in (ROOT / "migrations").glob("*.sql"):
        assert f"bot/migrations/{migration.name}" in names
    for name in ["bot/defaults/base-config.yaml", "bot/defaults/demo.yaml",
                 "bot/defaults/categories.yaml", "bot/defaults/communities.yaml",
                 "bot/defaults/geo/communes-70.geojson", "bot/defaults/geo/communes-48.geojson",
                 "bot/locales/core.fr.yaml", "bot/cap/CAP-v1.2.xsd", "bot/geo/build.py"]:
        assert name in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "alerte-bot = bot.cli:entry_point" in zipfile.ZipFile(wheel).read(
        entry_points).decode()


def test_installed_bot_runs_the_demo_from_another_folder(installed: Path,
                                                          tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(ROOT / "config" / "demo.yaml", copy / "demo.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run_in(installed, elsewhere, "python", "-c", "import bot; print(bot.__file__)")
    assert where.stdout.startswith(str(installed)), where.stdout
    done = run_in(installed, elsewhere, "alerte-bot", "--config", str(copy / "demo.yaml"), "demo")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "démo réussie" in done.stdout
    assert list(elsewhere.iterdir()) == []  # nothing written in the current directory
    shipped = run_in(installed, elsewhere, "python", "-m", "bot", "demo")
    assert shipped.returncode == 0, shipped.stdout[-2000:] + shipped.stderr[-2000:]
    assert "démo réussie" in shipped.stdout


def test_installed_bot_writes_a_starter_and_migrates_its_database(installed: Path,
                                                                  tmp_path: Path) -> None:
    done = run_in(installed, tmp_path, "python", "-m", "bot", "init", "site",
                  "--departement", "70")
    assert done.returncode == 0, done.stderr
    starter = tmp_path / "site" / "bot.yaml"
    assert "bundled:geo/communes-70.geojson" in starter.read_text(encoding="utf-8")
    audit = run_in(installed, tmp_path / "site", "alerte-bot", "--config", "bot.yaml",
                   "audit", "verify")
    assert audit.returncode == 0, audit.stderr
    assert "audit chain intact: 0 events" in audit.stdout
    assert (tmp_path / "site" / "var" / "bot.sqlite3").is_file()


def test_installed_bot_without_configuration_says_how_to_get_one(installed: Path,
                                                                 tmp_path: Path) -> None:
    done = run_in(installed, tmp_path, "alerte-bot", "export")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: config/bot.yaml: file not found (give --config FILE, or write one with: "
        "alerte-bot init DIR --departement NN)"]
