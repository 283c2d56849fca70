# Two commands: `make run` (one full cycle on the embedded default) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint daemon bench clean browser-deps sqlite-schema

$(BIN)/monitor: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e .
	@$(BIN)/python -m compileall -q monitor  # every start reads bytecode, even where Python may not write it
	@touch $@

$(VENV)/.dev-installed: $(BIN)/monitor
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## one poll + delivery cycle on monitor.yaml (SQLite, sample feed, email to outbox/)
run: $(BIN)/monitor
	@$(BIN)/monitor run --once

## the daemon on monitor.yaml
daemon: $(BIN)/monitor
	$(BIN)/monitor run

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check monitor tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## the browser tests drive Debian's Chromium (Playwright, no browser download); installed when possible
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } \
		|| echo "chromium is not installed: the browser tests will skip (apt-get install chromium)"

test: lint browser-deps
	$(BIN)/pytest -q

## after adding a migration: rewrite the head schema an empty SQLite database is created from
sqlite-schema: $(BIN)/monitor
	$(BIN)/python -c "from monitor.db import write_sqlite_schema; write_sqlite_schema()"

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/match.py

clean:
	rm -rf var outbox .pytest_cache .ruff_cache .mypy_cache
