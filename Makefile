# The front door. `make run` and `make test` work on a fresh machine: they create .venv and
# install the pinned dependencies first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/data/dagster_home

CANDLES ?=
PYTEST_ARGS ?=

.PHONY: install system-packages run ingest test dev bench lock clean-data

$(VENV)/.installed: requirements.lock setup.py pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==0.9.30
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

# Pango for weasyprint: installed with apt when missing and we are root, else named.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages: $$missing (sudo apt-get install $$missing)" >&2; exit 1; fi; \
	fi

install: $(VENV)/.installed system-packages

$(DAGSTER_HOME)/dagster.yaml: config/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp config/dagster.yaml $@

# The whole asset graph: against live Binance, or against the replay exchange serving CANDLES.
run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m btc_lifecycle.launch $(if $(CANDLES),--candles "$(CANDLES)") -- \
		$(BIN)/dagster asset materialize -m btc_lifecycle.definitions --select '*'

# Only the ingestion slice: raw candles, labels and stats.
ingest: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m btc_lifecycle.launch $(if $(CANDLES),--candles "$(CANDLES)") -- \
		$(BIN)/dagster asset materialize -m btc_lifecycle.definitions --select 'group:ingestion'

# Webserver and daemon on 127.0.0.1.
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m btc_lifecycle.launch $(if $(CANDLES),--candles "$(CANDLES)") -- \
		$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $${DAGSTER_PORT:-3000}

# pytest's exit code 5 (no tests collected) counts as a failure.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

bench: install
	$(BIN)/python -m benchmarks $(if $(CANDLES),--candles "$(CANDLES)")

# Re-resolve the pins after editing requirements.in.
lock: install
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header --no-annotate -o requirements.lock

clean-data:
	rm -rf data/feature_store data/dagster_home data/mlflow data/reports
