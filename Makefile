# The handful of commands people use. Each target installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install system-deps demo test lint audit format native clean

$(BIN)/fraudstream: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/fraudstream ## virtualenv with fraudstream and the dev tools

system-deps: ## InfluxDB server, a JDK and Apache Kafka's jars for the integration tests (apt, Maven Central)
	bash scripts/install-system-deps

demo: install ## embedded broker + worker + load generator, alerts on screen
	$(BIN)/fraudstream demo

test: install system-deps ## every test: unit, and integration with a real broker and InfluxDB
	$(BIN)/python -m pytest

lint: install ## ruff and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

audit: install ## dependency vulnerability audit (pip-audit; reports when PyPI's data is unreachable)
	scripts/audit $(BIN)

native: install ## compile the detection core's hot modules with mypyc (opt-in; undo: fraudstream native clean)
	$(BIN)/fraudstream native build

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache fraudstream-data
