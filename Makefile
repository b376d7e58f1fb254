# Set-up and common tasks. `make train` and `make test` create .venv from pyproject.toml when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test test-all lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet --editable . --group dev
	touch $(STAMP)

train: install  ## the embedded default run: points + MLP, seconds on a CPU
	$(PY) src/train.py $(ARGS)

test: install  ## the fast test suite (pytest exit code 5, "no tests collected", counts as success)
	$(PY) -m pytest -n 2 $(ARGS) || [ $$? -eq 5 ]

test-all: install  ## every test, slow ones included
	$(PY) -m pytest -n 2 -m "" $(ARGS)

lint: install
	$(VENV)/bin/pre-commit run --all-files

clean:
	rm -rf logs .pytest_cache .ruff_cache
