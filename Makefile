# The front door. `make run` and `make test` work on a fresh machine: they create .venv and
# install the pinned dependencies first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CANDLES ?=
PYTEST_ARGS ?=

# The production profile (make up; docs/operations.md): while its profile.env exists, every target
# runs against the profile's PostgreSQL instance and MLflow server; make down removes the file.
PROFILE_ENV := $(or $(PROFILE_DIR),$(CURDIR)/data)/profile.env
-include $(PROFILE_ENV)

# SIMULATION=data/simulations/<stamp>: open a replayed month's stores instead of the project's
# (make dev, make mlflow-ui). The folder holds what `make simulate` wrote.
SIMULATION ?=
ifneq ($(SIMULATION),)
SIM := $(abspath $(SIMULATION))
ifeq ($(wildcard $(SIM)/simulation.json),)
$(error SIMULATION=$(SIMULATION) is not a folder written by make simulate (no simulation.json))
endif
DAGSTER_HOME := $(SIM)/dagster_home
export FEATURE_DB_PATH := $(SIM)/feature_store/bitcoin.duckdb
export BTC_REPORT_DIR := $(SIM)/reports
export MLFLOW_TRACKING_URI := sqlite:///$(SIM)/mlflow/mlflow.db
CANDLES := $(shell sed -n 's/.*"candles": "\(.*\)".*/\1/p' $(SIM)/simulation.json)
endif
DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export DAGSTER_HOME

.PHONY: install system-packages run demo ingest history test test-fast graph coverage mutate lint dev mlflow-ui serve feast-ui simulate bench horizon-study lock clean-data up down status profile-up-check worker

# The virtualenv and the pinned uv that installs into it (the same version as in uv.lock).
UV_VERSION := 0.9.30
$(BIN)/uv:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

# Exactly what uv.lock pins (every extra: test and dev), the project itself editable. --locked
# stops when pyproject.toml changed without `make lock`.
$(VENV)/.installed: uv.lock pyproject.toml setup.py | $(BIN)/uv
	@# Bytecode is compiled once here: with PYTHONDONTWRITEBYTECODE set, every process would
	@# otherwise compile each module it imports again.
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --locked --all-extras --compile-bytecode
	@touch $@

# Pango for weasyprint and Debian's Chromium for the browser test (Playwright drives it; no
# browser download): installed with apt when missing and we are root, else named.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 chromium postgresql redis-server
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages: $$missing (sudo apt-get install $$missing)" >&2; exit 1; fi; \
	fi

install: $(VENV)/.installed system-packages

# The instance's SQLite schema is created here, once: processes that open a fresh instance at
# the same moment race on creating it.
ifeq ($(BTC_PROFILE),production)
# Under the profile, make up wrote and migrated the instance (config/dagster.production.yaml):
# only check that every part answers.
$(DAGSTER_HOME)/dagster.yaml: profile-up-check
profile-up-check: | $(VENV)/.installed
	@$(BIN)/python -m btc_lifecycle.production status --require-up
else
$(DAGSTER_HOME)/dagster.yaml: config/dagster.yaml | $(VENV)/.installed
	@mkdir -p $(DAGSTER_HOME)
	cp config/dagster.yaml $@
	$(BIN)/dagster instance migrate >/dev/null
endif

# The whole asset graph: against live Binance, or against the replay exchange serving CANDLES
# (a file, or a space-separated list of SYMBOL=FILE, one market each; the launcher passes each).
# The launcher checks config, candle file and dependencies first, shows progress lines, and
# keeps the whole output in data/logs/<stamp>.log (a failure is one line naming the log).
# Every day the exchange has (at most backfill_days) as one partition-range run, then the rest.
# Unchanged inputs register no new model version; RETRAIN=1 trains one anyway.
FORCE_RETRAIN := {"ops": {"model": {"config": {"force_retrain": true}}}}
run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m btc_lifecycle.launch --progress --summary --history $(foreach file,$(CANDLES),--candles "$(file)") -- \
		$(BIN)/dagster asset materialize -m btc_lifecycle.definitions --select '*' $(if $(RETRAIN),--config-json '$(FORCE_RETRAIN)')

# The whole graph offline on the shipped sample: four real days (7-10 March 2023, the start of
# the SVB sell-off) from Binance.US, see data/sample/README.md.
DEMO_CANDLES := data/sample/btcusdt_1m_2023-03-07_2023-03-10_binanceus.csv.gz
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m btc_lifecycle.launch --progress --summary --history --candles "$(DEMO_CANDLES)" -- \
		$(BIN)/dagster asset materialize -m btc_lifecycle.definitions --select '*'

# Only the ingestion slice: raw candles, labels and stats, of every configured market.
INGESTION_SLICE := key:*raw_candles or key:*labeled_candles or key:*ingestion_stats
ingest: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m btc_lifecycle.launch --progress --history $(foreach file,$(CANDLES),--candles "$(file)") -- \
		$(BIN)/dagster asset materialize -m btc_lifecycle.definitions --select '$(INGESTION_SLICE)'

# Every day since SINCE (default: ingest.history_start) into the store: Binance's archives for the
# days before yesterday, ccxt for the newest; one ranged run of every market's raw and labeled candles.
SINCE ?=
history: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m btc_lifecycle.launch --progress --since "$(SINCE)" $(foreach file,$(CANDLES),--candles "$(file)") -- \
		$(BIN)/dagster asset materialize -m btc_lifecycle.definitions --select 'key:*raw_candles or key:*labeled_candles'

# Webserver and daemon on 127.0.0.1; starts offline too (browsing needs no exchange; a run that
# fetches candles then fails in its own log). Ctrl-C or SIGTERM stops every child process.
DAGSTER_PORT ?= 3000
ifeq ($(BTC_PROFILE),production)
# The profile's own webserver and daemon serve the UI: a second daemon would run everything twice.
dev: $(DAGSTER_HOME)/dagster.yaml
	@echo "Dagster UI: http://127.0.0.1:$(DAGSTER_PORT)  (the production profile's webserver; make down, then make dev, for the embedded one)"
else
dev: install $(DAGSTER_HOME)/dagster.yaml
	@echo "Dagster UI: http://127.0.0.1:$(DAGSTER_PORT)  (instance: $(DAGSTER_HOME))"
	$(BIN)/python -m btc_lifecycle.launch --offline-ok $(foreach file,$(CANDLES),--candles "$(file)") -- \
		$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)
endif

# The MLflow UI on the project's tracking store (or a replayed month's, with SIMULATION=).
MLFLOW_PORT ?= 5000
ifeq ($(BTC_PROFILE),production)
mlflow-ui: $(DAGSTER_HOME)/dagster.yaml
	@echo "MLflow UI: $(MLFLOW_TRACKING_URI)  (the production profile's tracking server)"
else
mlflow-ui: install
	@mkdir -p data/mlflow
	@echo "MLflow UI: http://127.0.0.1:$(MLFLOW_PORT)"
	$(BIN)/mlflow ui --backend-store-uri "$(or $(MLFLOW_TRACKING_URI),sqlite:///$(CURDIR)/data/mlflow/mlflow.db)" \
		--host 127.0.0.1 --port $(MLFLOW_PORT)
endif

# Online scoring (docs/operations.md): the MLflow champion on Feast's online store, on
# http://127.0.0.1:8765 by default; SERVE_ARGS passes flags, e.g. SERVE_ARGS='--port 9000'.
SERVE_ARGS ?=
serve: install
	$(BIN)/python -m btc_lifecycle.serving $(SERVE_ARGS)

# Feast's UI on the generated repository (after make run or make demo: features, entity, view).
FEAST_PORT ?= 8888
# The repository is where the settings put it (FEAST_REPO_DIR, else beside FEATURE_DB_PATH, either
# possibly from .env): asked of the typed config, not guessed here.
feast-ui: install
	@repo=$$($(BIN)/python -c "from btc_lifecycle.config import load_settings; print(load_settings().feast_repo_dir)") || exit 2; \
	test -f "$$repo/feature_store.yaml" || { echo "no Feast repository in $$repo yet: run make demo or make run first"; exit 2; }; \
	echo "Feast UI: http://127.0.0.1:$(FEAST_PORT)"; \
	$(BIN)/feast -c "$$repo" ui --host 127.0.0.1 --port $(FEAST_PORT)

# A replayed month: the real schedules and sensor ticked through CANDLES at accelerated time.
# Its state stays in data/simulations/<UTC stamp>/ (or STATE=DIR) for make dev / mlflow-ui.
TICK_HOURS ?= 6
STATE ?=
simulate: install
	@test -n "$(CANDLES)" || { echo "usage: make simulate CANDLES=path/to/candles.csv [TICK_HOURS=6] [STATE=DIR]"; exit 2; }
	$(BIN)/python -m btc_lifecycle.simulation --candles "$(CANDLES)" --tick-hours $(TICK_HOURS) $(if $(STATE),--state "$(STATE)")

# pytest's exit code 5 (no tests collected) counts as a failure. The suite runs on both cores
# (pytest-xdist), a test file per worker: the tests write only to their own temporary folders and
# ports. Files go out in collection order (conftest puts the minute-long ones first; xdist would
# otherwise send the files with the most tests first). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: install
	@$(BIN)/python -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

# The edit-test loop: every test that starts no process end to end (no e2e marker).
test-fast: install
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not e2e" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

# The asset graph in README.md, drawn again from the code location.
graph: install
	$(BIN)/python -m btc_lifecycle.lineage_diagram

# Line coverage of btc_lifecycle/ per module (term-missing) and the total. The fast tier by
# default, the whole suite with E2E=1. [tool.coverage.run] patch = ["subprocess"] measures the
# processes the tests start too (launch.py, the replay exchange, the dagster CLI).
E2E ?=
coverage: install
	@rm -f .coverage .coverage.*
	@$(BIN)/python -m pytest --cov --cov-report=term-missing $(if $(E2E),,-m "not e2e") $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

# Mutation testing of domain/, modelling/ and monitoring/ with mutmut ([tool.mutmut] in
# pyproject.toml) on the fast unit tests, two workers; not part of `make test`. Results stay in
# mutants/ (git-ignored): a second run re-tests only changed functions. MUTANTS= shards the run,
# e.g. MUTANTS='btc_lifecycle.modelling.champion*'. docs/testing.md says how to read them.
MUTANTS ?=
mutate: install
	-OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python benchmarks/mutate.py --survivors

# The production profile on this machine (docs/operations.md): PostgreSQL, an MLflow server and
# Dagster's code server, webserver and daemon on 127.0.0.1, files under data/ (PROFILE_DIR).
# WORKERS=N adds the worker pool: Redis and N Celery workers that execute every run's steps
# (WORKERS=0: the broker only, for workers on other hosts; docs/deployment.md).
WORKERS ?=
up: install
	$(if $(WORKERS),PROFILE_WORKERS=$(WORKERS)) $(BIN)/python -m btc_lifecycle.production up

# One Celery worker of the profile's pool, in the foreground, on a host that shares the profile's
# folder and has its profile.env (docs/deployment.md).
NAME ?= worker-$(shell hostname)
worker: $(VENV)/.installed
	$(BIN)/python -m btc_lifecycle.production worker --name "$(NAME)"

down: $(VENV)/.installed
	$(BIN)/python -m btc_lifecycle.production down

status: $(VENV)/.installed
	@$(BIN)/python -m btc_lifecycle.production status

bench: install
	$(BIN)/python -m benchmarks $(if $(CANDLES),--candles "$(CANDLES)") $(if $(ONLY),--only "$(ONLY)")

# Does the model's edge survive trading costs? Features, walk-forward and backtest at horizons of
# 1, 5, 15 and 60 minutes on CANDLES (default: the shared month), with and without costs, as the
# Markdown tables of docs/ml-method.md.
horizon-study: install
	$(BIN)/python -m benchmarks.horizon_study $(if $(CANDLES),--candles "$(CANDLES)")

# Re-resolve uv.lock after editing the dependencies in pyproject.toml (versions already locked
# stay unless pyproject.toml asks otherwise; `$(BIN)/uv lock --upgrade-package NAME` moves one),
# then install it.
lock: | $(BIN)/uv
	$(BIN)/uv lock
	$(MAKE) $(VENV)/.installed

# ruff's lint rules and formatting (configured in pyproject.toml); both run, either fails it.
LINT_PATHS := btc_lifecycle btc_lifecycle_tests benchmarks
lint: $(VENV)/.installed
	@rc=0; $(BIN)/ruff check $(LINT_PATHS) || rc=1; $(BIN)/ruff format --check $(LINT_PATHS) || rc=1; exit $$rc

clean-data:
	rm -rf data/feature_store data/dagster_home data/mlflow data/reports
