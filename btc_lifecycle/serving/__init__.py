"""Online scoring: the champion's probability for the newest candle in the online feature store,
over HTTP on loopback (``python -m btc_lifecycle.serving``; docs/operations.md).

Plain Python, no Dagster. The modules, each one concern:

- ``online_features``: the seam to the online store (``FeatureSource``) and an in-memory one;
- ``feast_source``: the source over the project's Feast repository;
- ``champion``: the champion loaded from MLflow (XGBoost's ubj, never a pickle), and the watcher
  that swaps in a new version when the ``@champion`` alias moves;
- ``prediction_log``: every served prediction, in a SQLite file of its own (the monitoring asset
  judges them beside the batch predictions);
- ``service``: what an answer is, and every refusal (4xx, 503) with its message;
- ``server``: the HTTP layer (``http.server``'s ThreadingHTTPServer).

Importing this package imports nothing heavy: monitoring reads the prediction log through it.
"""
