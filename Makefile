# The two commands of the README: `make repro` runs the pipeline, `make test` runs the tests.
# Both create .venv on first use and reinstall the project when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
INSTALLED := $(VENV)/.installed

# Stages in dvc.yaml call `python`; this makes it the virtual environment's.
export PATH := $(BIN):$(PATH)

.PHONY: repro test lint format clean-venv

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

repro: $(INSTALLED)
	dvc repro

test: $(INSTALLED)
	ruff check .
	python -m pytest

lint: $(INSTALLED)
	ruff check .
	ruff format --check .

format: $(INSTALLED)
	ruff check --fix .
	ruff format .

clean-venv:
	rm -rf $(VENV)
