# The two commands: `make test` (set up and pass the tests) and `make demo` (the main job on
# embedded defaults). Both create .venv and install the package on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export JOURNEYS_DATA_DIR ?= $(CURDIR)/.journeys

.PHONY: system-deps system-deps-demo install jars lint typecheck unit integration test demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

system-deps:
	bash scripts/system-deps.sh test

system-deps-demo:
	bash scripts/system-deps.sh demo

jars: install
	$(BIN)/journeys kafka fetch

LINTED := $(wildcard pipeline tests benchmarks)

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest tests/unit

integration: install jars
	$(BIN)/python -m pytest tests/integration

test: system-deps install jars lint typecheck
	$(BIN)/python -m pytest

demo: system-deps-demo install
	$(BIN)/journeys demo

bench: install jars
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .journeys .pytest_cache .mypy_cache .ruff_cache .hypothesis
