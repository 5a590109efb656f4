# The commands of the README: `make setup` creates .venv and installs the project, `make repro` runs the
# pipeline, `make test` runs the tests. Each creates .venv on first use and reinstalls the project when
# pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
INSTALLED := $(VENV)/.installed

# Stages in dvc.yaml call `python`; this makes it the virtual environment's.
export PATH := $(BIN):$(PATH)

.PHONY: setup repro test lint format bench clean-venv

JOBS ?= 2

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# bubblewrap seals each hand-in of a class run (python -m lablib.gradcheck FOLDER); without it the
# checker falls back to resource limits and says so. Installed here where this user can.
setup: $(INSTALLED)
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } || true

repro: $(INSTALLED)
	dvc repro

test: $(INSTALLED)
	ruff check .
	python -m pytest

# `make preset-lab2023` runs a preset of experiments.yaml as a named DVC experiment;
# `make series-report001 JOBS=2` runs the rows of an ablation series not yet finished and writes its table.
# QUICK=1 runs either on a subset for two epochs; FORCE=1 reruns finished rows; ROWS=a,b runs only those rows.
preset-%: $(INSTALLED)
	python -m lablib.experiments preset $* $(if $(QUICK),--quick)

series-%: $(INSTALLED)
	python -m lablib.experiments series $* --jobs $(JOBS) $(if $(QUICK),--quick) $(if $(FORCE),--force) \
		$(if $(ROWS),--rows $(ROWS))

bench: $(INSTALLED)
	python -m benchmarks.speed

lint: $(INSTALLED)
	ruff check .
	ruff format --check .

format: $(INSTALLED)
	ruff check --fix .
	ruff format .

clean-venv:
	rm -rf $(VENV)
