# The README's two commands: `make run` and `make test`. Both bootstrap .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test test-slow lint format typecheck bench clean install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## migrate, load the demo data (idempotent) and serve on http://$(HOST):$(PORT)
	$(BIN)/chm serve --demo --host $(HOST) --port $(PORT)

test: $(STAMP)  ## the test suite against a real (embedded) PostgreSQL (slow suites: make test-slow)
	$(BIN)/python -m pytest

test-slow: $(STAMP)  ## the slow suites: fuzzing, headless browser, generated client (CI runs them too)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)  # the offline-docs check
	$(BIN)/python -m pytest -m slow || test $$? -eq 5  # 5: no slow test collected

lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench

format: $(STAMP)
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

typecheck: $(STAMP)
	$(BIN)/mypy app

bench: $(STAMP)  ## every SPEC §9 benchmark in one run (~40 min), written to bench/RESULTS.md (see bench/README.md)
	$(BIN)/python bench/run.py --full --write-results

clean:
	rm -rf $(VENV) .chm .pytest_cache
