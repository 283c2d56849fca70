# Two commands: `make run` (one full cycle on the embedded default) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint daemon bench clean

$(BIN)/monitor: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e .
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

test: lint
	$(BIN)/pytest -q

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/match.py

clean:
	rm -rf var outbox .pytest_cache .ruff_cache .mypy_cache
