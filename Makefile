# One-command set-up on a fresh machine: `make book` or `make test` create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with .nbval_sanitize.cfg

.PHONY: setup book test outputs lint clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

## Build the HTML book into _build/html from the committed outputs (no execution).
book: setup
	$(BIN)/jupyter-book build .

## Unit tests, then every chapter through nbval at the quick budget.
test: setup
	MNLIB_BUDGET=quick TQDM_DISABLE=1 $(BIN)/python -m pytest tests $(NBVAL) notebooks

## Re-execute every chapter top to bottom at the standard budget and store the outputs.
outputs: setup
	MNLIB_BUDGET=standard TQDM_DISABLE=1 $(BIN)/python tools/execute_notebooks.py $(NOTEBOOKS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf _build
