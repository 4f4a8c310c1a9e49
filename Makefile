# The two commands: `make test` (set up and pass the tests) and `make demo` (the main job on
# embedded defaults). Both create .venv and install the package on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export JOURNEYS_DATA_DIR ?= $(CURDIR)/.journeys

.PHONY: system-deps system-deps-demo install constraints jars lint typecheck unit integration test demo bench clean

install: $(VENV)/.installed $(VENV)/.compiled

# `embedded`: chdb, the ClickHouse engine the demo and the tests run on. Pinned by
# constraints.txt; pip lists what it collects and installs, since a first install takes minutes.
$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "Installing journey-pipeline[test,embedded] into $(VENV) (first time: a few minutes, ~1 GB)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -c constraints.txt -e '.[test,embedded]'
	touch $@ $(VENV)/.compiled

# The engine's modules compiled with Cython beside their source (setup.py; the install above
# compiles them too). Compiled again when one of them changes: until then that module runs
# from its source (pipeline/compiled.py), correct but slower.
COMPILED := setup.py pipeline/compiled.py $(shell sed -n 's/^    "pipeline\.\([a-z_.]*\)",$$/pipeline.\1/p' pipeline/compiled.py | tr . / | sed 's/$$/.py/')
$(VENV)/.compiled: $(COMPILED) | $(VENV)/.installed
	@echo "Compiling the engine (Cython, about two minutes)"
	$(BIN)/python -m pip install --progress-bar on --no-deps -e .
	touch $@

# Re-pin constraints.txt after a dependency change in pyproject.toml: resolve in a fresh venv.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --progress-bar on '.[test,embedded]'
	{ sed -n '/^#/p' constraints.txt; \
	  .venv-constraints/bin/python -m pip freeze --exclude journey-pipeline; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

system-deps:
	bash scripts/system-deps.sh test

system-deps-demo:
	bash scripts/system-deps.sh demo

jars: install
	$(BIN)/journeys kafka fetch

LINTED := $(wildcard pipeline tests benchmarks setup.py)

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
	rm -rf $(VENV) .journeys .pytest_cache .mypy_cache .ruff_cache .hypothesis build
	rm -f pipeline/compiled.json $(shell find pipeline -name '*.so')
