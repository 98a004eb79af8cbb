# Two commands on a fresh machine with only Python 3.11+ and the package registries:
#   make demo   set up, train the iris example, deploy it locally, get predictions
#   make test   set up with the dev extras and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
# constraints.txt pins every package CI tested (regenerate with `make lock`).
PIN    := --constraint constraints.txt
# The dev extra pins torch==2.13.0 for CPU: from the machine's wheel directory when
# PIP_FIND_LINKS names one (uv ignores pip's settings), else from PyTorch's CPU index;
# never the CUDA build PyPI serves for Linux.
TORCH_SOURCES := $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)

.PHONY: help venv install dev demo demo-stop engine test test-containers lint fmt lock bench clean

help:
	@echo "make demo    deploy the iris example locally and print predictions"
	@echo "make test    install dev extras and run the whole suite"
	@echo "make engine  install and start a Docker engine for tests/containers (root)"
	@echo "make lint    ruff"
	@echo "make bench   run the benchmarks and write benchmarks/results"
	@echo "make lock    re-pin constraints.txt"

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("slml needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

venv: $(BIN)/python

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(UV) pip install --python $(BIN)/python $(PIN) -e ".[sklearn]"
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml constraints.txt
	$(UV) pip install --python $(BIN)/python $(PIN) $(TORCH_SOURCES) -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: install
	cd examples/iris && ../../$(BIN)/python train.py
	cd examples/iris && ../../$(BIN)/slml deploy --provider local
	cd examples/iris && ../../$(BIN)/slml invoke --file sample.json
	@echo
	@echo "The iris model is serving locally. Try:"
	@echo "  cd examples/iris && ../../$(BIN)/slml status"
	@echo "  cd examples/iris && ../../$(BIN)/slml destroy     # stop it (or: make demo-stop)"

demo-stop:
	cd examples/iris && ../../$(BIN)/slml destroy --provider local

# A Docker engine for tests/containers (tools/engine.sh): installs docker.io,
# debootstrap and qemu-user-static when missing and starts dockerd with no bridge.
# Without root it says what is missing and those tests skip (under CI=true they fail).
engine:
	bash tools/engine.sh

test: dev engine
	$(BIN)/ruff check slml tests benchmarks infra examples && $(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=25

test-containers: dev engine
	$(BIN)/python -m pytest -q tests/containers

lint: dev
	$(BIN)/ruff check slml tests benchmarks infra examples
	$(BIN)/ruff format --check slml tests || true

fmt: dev
	$(BIN)/ruff check --fix slml tests benchmarks infra examples
	$(BIN)/ruff format slml tests benchmarks infra examples

lock: venv
	$(UV) pip compile pyproject.toml $(TORCH_SOURCES) --extra dev --extra all --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o constraints.txt --quiet

bench: dev
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
