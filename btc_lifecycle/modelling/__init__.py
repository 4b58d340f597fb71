"""Predicting the next candle's direction: features, walk-forward training, baselines, the gate."""
