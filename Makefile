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

# A seeded training repeats to the last bit on the same OpenBLAS kernel with the same threads (README,
# "When the bits repeat"). `make repro BLAS_KERNEL=SkylakeX BLAS_THREADS=2` pins both, as the committed
# baseline's dvclive/numpy/machine.json names them, on a CPU that can run that kernel. Unset, OpenBLAS
# picks the kernel for this CPU and the thread count follows the environment.
ifdef BLAS_KERNEL
export OPENBLAS_CORETYPE := $(BLAS_KERNEL)
endif
ifdef BLAS_THREADS
export OMP_NUM_THREADS := $(BLAS_THREADS)
export OPENBLAS_NUM_THREADS := $(BLAS_THREADS)
endif

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,cluster]'
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
# QUICK=1 runs either on a subset for two epochs; FORCE=1 reruns finished rows; ROWS=a,b runs only those rows;
# SCHEDULER=tcp://host:8786 runs the series' experiments on that Dask cluster instead of DVC's queue.
preset-%: $(INSTALLED)
	python -m lablib.experiments preset $* $(if $(QUICK),--quick)

series-%: $(INSTALLED)
	python -m lablib.experiments series $* $(if $(SCHEDULER),--scheduler $(SCHEDULER),--jobs $(JOBS)) \
		$(if $(QUICK),--quick) $(if $(FORCE),--force) $(if $(ROWS),--rows $(ROWS))

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
