# Dopomoga: `make run` starts everything on an embedded broker; `make test` checks everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: venv test lint run bench schemas clean deploy-tools browser-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .

schemas: venv
	$(BIN)/python -m schemas.export

# PostgreSQL for the stores' tests: deploy/test-postgres.sh installs (as root) and starts a private
# server and prints its URL; without one the PostgreSQL cases skip (.ci/run makes them required).
test: venv lint browser-tools
	DOPOMOGA_TEST_PG="$${DOPOMOGA_TEST_PG:-$$(bash deploy/test-postgres.sh)}" $(BIN)/pytest

# Debian's chromium and chromedriver for the browser tests (tests/e2e), only when missing; never a
# downloaded browser. Without root the tests skip locally (and fail under CI=true).
browser-tools:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { [ "$$(id -u)" -eq 0 ] && apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; } || \
	  echo "browser-tools: chromium/chromedriver missing; install them as root (apt-get install chromium chromium-driver)"

# promtool and docker-compose for tests/deploy (apt-get as root; see deploy/install-tools.sh).
deploy-tools:
	bash deploy/install-tools.sh

run: venv
	$(BIN)/dopomoga up

bench: venv
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/budget.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
