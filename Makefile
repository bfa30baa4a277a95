# Set-up and entry points. `make demo` and `make test` each set up everything they need first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUTPUT ?= wirestream-demo-output

.PHONY: setup tools demo test lint unit integration bench clean

setup: tools $(VENV)/.installed

tools:
	@bash deploy/bootstrap.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/wirestream demo --output $(DEMO_OUTPUT)

lint: setup
	$(BIN)/ruff check connectors pipeline schemas wirestream tests benchmarks
	$(BIN)/ruff format --check connectors pipeline schemas wirestream tests benchmarks
	$(BIN)/mypy

test: setup lint
	$(BIN)/pytest -q -ra tests

unit: setup
	$(BIN)/pytest -q tests/unit

integration: setup
	$(BIN)/pytest -q tests/integration

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
