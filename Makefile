# One-command set-up on a fresh machine: `make book` or `make test` create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The chapters only: notebooks/student/ holds their generated student versions.
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with .nbval_sanitize.cfg

.PHONY: setup book check-book browser-test test outputs students lab lint clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

## Build the HTML book into _build/html from the committed outputs (no execution).
book: setup
	$(BIN)/jupyter-book build .

## Check the built book works offline: local MathJax, hidden solutions, student-version links.
check-book: setup
	$(BIN)/python tools/check_book.py _build/html

## Open every page of the built book (`make book` first) in headless Chromium, as readers do:
## console errors, offline requests, rendered math, images, links and anchors, chapter links,
## search, phone width. Self-test first. Screenshots: _build/screenshots/. Needs /usr/bin/chromium.
browser-test: setup
	$(BIN)/python -m pytest tests_browser/test_browser_check.py -q
	$(BIN)/python -m pytest tests_browser/test_book_in_browser.py -q -s

## Unit tests (they also run every student version), then every chapter through nbval at the
## quick budget. MNLIB_STRICT_CHECKS=1 only for the chapters: a self-check that fails there
## fails the cell (a student version must run without it).
test: setup
	MNLIB_BUDGET=quick TQDM_DISABLE=1 $(BIN)/python -m pytest tests
	MNLIB_BUDGET=quick TQDM_DISABLE=1 MNLIB_STRICT_CHECKS=1 \
	  $(BIN)/python -m pytest $(NBVAL) $(NOTEBOOKS)

## Re-execute every chapter top to bottom at the standard budget and store the outputs.
## A chapter whose solution fails its self-check is not written (MNLIB_STRICT_CHECKS=1).
outputs: setup
	MNLIB_BUDGET=standard TQDM_DISABLE=1 MNLIB_STRICT_CHECKS=1 \
	  $(BIN)/python tools/execute_notebooks.py $(NOTEBOOKS)

## Student versions notebooks/student/NN_name.ipynb: solutions stubbed, outputs cleared.
students: setup
	$(BIN)/python tools/make_students.py $(NOTEBOOKS)

## JupyterLab on the chapters with the .venv kernel (`MNLIB_BUDGET=full make lab`: full budget).
lab: setup
	$(BIN)/jupyter lab notebooks

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf _build
