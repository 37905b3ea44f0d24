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

# The HTML report is checked in a real headless browser: Debian's chromium (and a CJK font, so
# screenshots show Chinese). Installed once; needs root, as on this project's machines and CI.
BROWSER_STAMP := $(VENV)/.browser

$(BROWSER_STAMP): | $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei)
	touch $(BROWSER_STAMP)

test: $(STAMP) $(BROWSER_STAMP)
	$(BIN)/ruff check campaigns tests migrations bench
	$(BIN)/mypy campaigns
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check campaigns tests migrations

clean:
	rm -rf $(VENV) demo-output .pytest_cache
