# Each target does its own set-up on a fresh machine: a .venv with everything installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
LINT_PATHS := featurecache tests examples benchmarks

.PHONY: demo test test-torch check lint typecheck bench bench-quick bench-small bench-stream clean

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

# The torch adapter's tests (featurecache.open(...).to_torch()): torch is not in [dev] because
# its default wheel from PyPI pulls several GB of CUDA libraries. For the CPU build (~750 MB
# installed) from PyTorch's own index: make test-torch TORCH_PIP_ARGS='--index-url https://download.pytorch.org/whl/cpu'
TORCH_VERSION ?= 2.13.0
TORCH_PIP_ARGS ?=
test-torch: $(STAMP)
	$(BIN)/python -m pip install --quiet 'torch==$(TORCH_VERSION)' $(TORCH_PIP_ARGS)
	$(BIN)/python -m pytest -m torch $(PYTEST_ARGS)

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

# Only the streaming rows (featurecache.open(...).batches / to_torch against reading the whole
# artifact and against the disk), 2 M rows, 3 rounds.
bench-stream: $(STAMP)
	$(BIN)/python benchmarks/stream.py

clean:
	rm -rf $(VENV) .featurecache examples/churn/data examples/partitioned/data benchmarks/work
