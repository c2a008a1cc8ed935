# Riffle: two commands for a newcomer — `make run` and `make test`.
# Everything they need is installed from the project's own files into .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/riffle serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# The seed comes first (once: later runs reuse it); common.py is shared code, not a benchmark.
bench: $(STAMP)
	for script in bench/seed.py $(filter-out bench/seed.py bench/common.py,$(wildcard bench/*.py)); do \
		$(BIN)/python "$$script" || exit 1; done

clean:
	rm -rf $(VENV) .riffle .pytest_cache .mypy_cache .ruff_cache
