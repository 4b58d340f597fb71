"""MLflow's global tracking URI reset around every test here, as in the modelling tests."""

from btc_lifecycle_tests.modelling.conftest import forget_tracking_uri  # noqa: F401
