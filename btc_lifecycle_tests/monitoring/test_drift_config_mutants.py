"""MonitoringConfig's validation, field by field: the smallest accepted value, the first rejected
one, and the whole message naming the field and the value given (test_config.py covers the YAML
side, but `make mutate` runs only the drift-named tests for monitoring/drift.py;
docs/mutation.md)."""

from __future__ import annotations

import pytest

from btc_lifecycle.monitoring import MonitoringConfig

REJECTED = [
    ("current_window", 1, "must be at least 2 candles"),
    ("reference_window", 1, "must be at least 2 candles or None"),
    ("stattest_threshold", 0.0, "must be positive"),
    ("drift_share_threshold", 1.0, "must be in [0, 1)"),
    ("drift_share_threshold", -0.01, "must be in [0, 1)"),
    ("min_realized_labels", 0, "must be at least 1"),
    ("performance_margin", -0.001, "must not be negative"),
    ("retrain_cooldown_hours", -0.5, "must not be negative"),
    ("columns", (), "must name at least one column, each once"),
    ("columns", ("rsi_14", "rsi_14"), "must name at least one column, each once"),
    ("stattest", None, "must name one of evidently's stattests"),
    ("stattest", "", "must name one of evidently's stattests"),
]


@pytest.mark.parametrize("name, value, problem", REJECTED)
def test_an_invalid_setting_is_rejected_with_a_message_naming_the_field_and_the_value(name, value, problem):
    with pytest.raises(ValueError) as raised:
        MonitoringConfig(**{name: value})
    assert str(raised.value) == f"monitoring field {name!r} {problem}, got {value!r}"


ACCEPTED = [
    ("current_window", 2),
    ("reference_window", 2),
    ("reference_window", None),
    ("stattest_threshold", 0.001),
    ("drift_share_threshold", 0.0),
    ("drift_share_threshold", 0.99),
    ("min_realized_labels", 1),
    ("performance_margin", 0.0),
    ("retrain_cooldown_hours", 0.0),
    ("retrain_cooldown_hours", 0.5),
    ("columns", ("rsi_14",)),
]


@pytest.mark.parametrize("name, value", ACCEPTED)
def test_the_edge_of_each_setting_is_accepted(name, value):
    assert getattr(MonitoringConfig(**{name: value}), name) == value
