# Set-up and common tasks. `make train` and `make test` create .venv when needed, with the
# versions pinned in requirements.lock, and put this folder on its path: the template runs in
# place (python src/train.py), it is not installed as a package.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test test-all lint lock clean

install: $(STAMP)

# uv (at the lock's version) makes .venv match the lock exactly, from PyPI (or UV_INDEX_URL), and
# compiles it to bytecode as pip would: under two minutes for the 5.8 GB of torch with its CUDA
# libraries, where pip takes three or more
$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$$(grep '^uv==' requirements.lock)"
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(PY) requirements.lock
	$(PY) -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'lightning_hydra_zoo.pth').write_text('$(CURDIR)\n')"
	touch $(STAMP)

train: install  ## the embedded default run: points + MLP, seconds on a CPU
	$(PY) src/train.py $(ARGS)

test: install  ## the fast test suite (pytest exit code 5, "no tests collected", counts as success)
	$(PY) -m pytest -n 2 $(ARGS) || [ $$? -eq 5 ]

test-all: install  ## every test, slow ones included
	$(PY) -m pytest -n 2 -m "" $(ARGS)

lint: install
	$(VENV)/bin/pre-commit run --all-files

lock: install  ## pin the newest versions pyproject.toml allows into requirements.lock (ARGS: more uv options)
	$(VENV)/bin/uv pip compile pyproject.toml --group pyproject.toml:dev --extra mlflow --universal \
		--python-version 3.11 --no-annotate --custom-compile-command "make lock" -o requirements.lock $(ARGS)

clean:
	rm -rf logs .pytest_cache .ruff_cache
