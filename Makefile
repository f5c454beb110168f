# Two entry points for a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench clean

$(BIN)/forethought: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(BIN)/forethought
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/forethought
	$(BIN)/forethought compare bundled:planetlab-20110303 --policies thr-mmt,lr-mmt,predictive,oracle

test: $(VENV)/.dev lint typecheck unit

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.dev
	$(BIN)/mypy

unit: $(VENV)/.dev
	$(BIN)/pytest

bench: $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/forecast.py
	$(BIN)/python benchmarks/simulate.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
