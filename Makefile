# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest docs bench clean catalogue cli-reference

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files so `pip install` reruns only when pyproject.toml changes.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/learnprivacy demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict src

# Two worker processes (the machine has two cores), one test file per worker at a time:
# each file keeps its module fixtures, and session servers start once per worker.
pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 --dist loadfile

docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict --site-dir .site

test: lint typecheck pytest docs

# After changing a document template's wording: re-extract the messages and merge them
# into every language's catalogue (new messages arrive untranslated).
catalogue: $(VENV)/.installed-dev
	$(BIN)/python -m learnprivacy._documents.catalogue

# After changing a command's options or help: regenerate docs/cli.md.
cli-reference: $(VENV)/.installed-dev
	$(BIN)/python -m learnprivacy.cli._reference > docs/cli.md

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .site .mypy_cache .pytest_cache .ruff_cache .hypothesis
