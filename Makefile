# Each target does its own set-up on a fresh machine: a .venv with everything installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
LINT_PATHS := featurecache tests examples benchmarks

.PHONY: demo test check lint typecheck bench bench-quick bench-small clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/churn/run_demo.py

# Everything: lint, format check, types, then the whole test suite (slow tests included).
test: lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast development loop (under 2 minutes): the same checks, then the tests not marked slow.
check: lint typecheck
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/partitioned.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

# Only the small-data scenarios (tiny frames; a minute or two).
bench-small: $(STAMP)
	$(BIN)/python benchmarks/run.py --small

clean:
	rm -rf $(VENV) .featurecache examples/churn/data examples/partitioned/data benchmarks/work
