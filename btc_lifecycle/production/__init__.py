"""The production profile on one machine: PostgreSQL, an MLflow server and Dagster's own
deployment pieces (code server, webserver, daemon), started and stopped as a set.

``python -m btc_lifecycle.production up|down|status`` (``make up``, ``make down``, ``make status``).
The profile is chosen by configuration only: ``up`` writes ``data/profile.env`` (DAGSTER_HOME,
MLFLOW_TRACKING_URI, the database's address), which the Makefile reads while it exists, and
``down`` removes it. docs/operations.md describes it and the path to more hosts.
"""
