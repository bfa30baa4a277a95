# Set-up and entry points. `make demo` and `make test` each set up everything they need first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUTPUT ?= wirestream-demo-output
CACHE ?= $(or $(WIRESTREAM_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wirestream)
# The Prism binary and the Flink job server are built for the Beam version pyproject.toml pins.
# rustup installs cargo here; a non-login shell (CI) may not have it on PATH.
export PATH := $(HOME)/.cargo/bin:$(PATH)
BEAM_VERSION := $(shell sed -n 's/.*"apache-beam==\([0-9.]*\)".*/\1/p' pyproject.toml)

.PHONY: setup tools runners demo test lint unit integration bench clean

setup: tools $(VENV)/.installed

runners: tools
	bash deploy/prism/install.sh $(BEAM_VERSION) $(CACHE)/prism/$(BEAM_VERSION)
	bash deploy/flink/build.sh $(BEAM_VERSION) $(CACHE)/flink

tools:
	@bash deploy/bootstrap.sh

# The compiled cores (Rust, built by setuptools-rust at install) rebuild with their sources.
$(VENV)/.installed: pyproject.toml $(wildcard pipeline/*_native/Cargo.* pipeline/*_native/src/*.rs)
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

test: setup runners lint
	$(BIN)/pytest -q -ra tests

unit: setup
	$(BIN)/pytest -q tests/unit

integration: setup runners
	$(BIN)/pytest -q tests/integration

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
