"""Watching the model in production: data drift, realized performance, and their reports."""
