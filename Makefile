# reconciler: the two commands that matter are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFORMANCE ?= tests/conformance

.PHONY: test check lint typecheck unit conformance demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## test: everything CI runs: lint, types, architecture contract, tests, conformance cases
test: $(STAMP) lint typecheck unit conformance

## check: the fast subset (lint, types, unit tests without the slow marks)
check: $(STAMP) lint typecheck
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/ruff format --check reconciler tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

## conformance: the public composite-schedule cases (a copy in tests/conformance/, test data)
conformance: $(STAMP)
	$(BIN)/python $(CONFORMANCE)/run.py --cmd "$(BIN)/reconciler composite -"

## demo: the embedded Central System, simulated chargers, example policies: plan, apply, plan
demo: $(STAMP)
	$(BIN)/reconciler demo

bench: $(STAMP)
	$(BIN)/python bench/composite.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
