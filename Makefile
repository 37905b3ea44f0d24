# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# The virtualenv is rebuilt only when pyproject.toml changes, so both are fast the second time.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench-smoke clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/campaigns demo

test: $(STAMP)
	$(BIN)/ruff check campaigns tests migrations
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check campaigns tests migrations

clean:
	rm -rf $(VENV) demo-output .pytest_cache
