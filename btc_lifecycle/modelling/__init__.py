"""Predicting the direction over the label horizon (the next candle by default): features,
walk-forward training, baselines, the gate, the backtest after costs."""
