"""Plotly figures for the reports and their rendering to PNG with kaleido."""

from __future__ import annotations

import html
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from btc_lifecycle.domain.labels import LABEL_COLUMN, tie_mask
from btc_lifecycle.modelling.backtest import STRATEGY_NAMES, Backtest
from btc_lifecycle.reporting.sampling import (
    MAX_SCATTER_POINTS,
    aggregate_ohlcv,
    bar_label,
    bar_size,
    close_line,
    evenly_spaced,
    sample_positions,
)
from btc_lifecycle.reporting.statistics import log_returns

# Layout size in CSS pixels; rendered at SCALE so the PNG stays sharp when the PDF shrinks it.
CHART_WIDTH = 900
SCALE = 2
MAX_SUBJECT = 28
UP, NOT_UP, TIE = "#1a9850", "#d73027", "#3b4cc0"
# Ten lines of this many points each stay sharp at the chart's 1,800 rendered pixels and render fast.
MAX_EQUITY_POINTS = 4_000
STRATEGY_COLOURS = {
    "long_short": "#1f77b4",
    "long_flat": "#ff7f0e",
    "selective": "#2ca02c",
    "buy_and_hold": "#7f7f7f",
    "flat": "#c7c7c7",
}

_BASE_LAYOUT = dict(
    template="plotly_white",
    width=CHART_WIDTH,
    font=dict(size=13),
    margin=dict(l=70, r=20, t=60, b=50),
    legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
)


def chart_title(subject: str, what: str) -> str:
    """``subject · what`` with the subject cut short and escaped.

    Plotly titles don't wrap, and they read a few HTML tags (<b>, <br>, <a>): data must stay text.
    """
    short = subject if len(subject) <= MAX_SUBJECT else subject[: MAX_SUBJECT - 1] + "…"
    return f"{html.escape(short, quote=False)} · {what}"


def candlestick_figure(candles: pd.DataFrame, interval: str, subject: str) -> go.Figure:
    """OHLC candlesticks over a volume panel, aggregated to at most ~2,000 bars."""
    size = bar_size(candles["open_time"].iloc[0], candles["open_time"].iloc[-1], interval)
    bars = aggregate_ohlcv(candles, size)
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=(0.74, 0.26), vertical_spacing=0.03)
    figure.add_trace(
        go.Candlestick(
            x=bars["open_time"],
            open=bars["open"],
            high=bars["high"],
            low=bars["low"],
            close=bars["close"],
            name="OHLC",
            showlegend=False,
            increasing_line_color=UP,
            decreasing_line_color=NOT_UP,
        ),
        row=1,
        col=1,
    )
    rising = (bars["close"] >= bars["open"]).to_numpy()
    figure.add_trace(
        go.Bar(
            x=bars["open_time"],
            y=bars["volume"],
            name="volume",
            showlegend=False,
            marker_color=np.where(rising, UP, NOT_UP),
            marker_line_width=0,
        ),
        row=2,
        col=1,
    )
    figure.update_layout(
        **_BASE_LAYOUT,
        height=560,
        bargap=0,
        title=chart_title(subject, f"OHLC, {bar_label(size)} bars ({len(bars):,} bars)"),
    )
    figure.update_xaxes(rangeslider_visible=False)
    figure.update_yaxes(title_text="price", row=1, col=1)
    figure.update_yaxes(title_text="volume", row=2, col=1)
    return figure


def close_price_figure(candles: pd.DataFrame, interval: str, subject: str) -> go.Figure:
    """Close price over the full range; breaks in the line are gaps in the data."""
    line = close_line(candles, interval)
    figure = go.Figure(
        go.Scatter(
            x=line["open_time"],
            y=line["close"],
            mode="lines",
            name="close",
            line=dict(width=1, color="#2c3e50"),
            connectgaps=False,
        )
    )
    figure.update_layout(**_BASE_LAYOUT, height=380, title=chart_title(subject, "close price"), yaxis_title="close")
    return figure


def label_scatter_figure(labeled: pd.DataFrame, interval: str, subject: str) -> go.Figure:
    """Log return per candle over time, coloured by label; ties get their own marker."""
    returns = log_returns(labeled, interval)
    ties = tie_mask(labeled)
    labels = labeled[LABEL_COLUMN]
    points = pd.DataFrame(
        {
            "open_time": labeled["open_time"],
            "log_return": returns,
            "kind": np.select(
                [ties.to_numpy(), labels.eq(1).fillna(False).to_numpy(), labels.eq(0).fillna(False).to_numpy()],
                ["tie", "up", "not up"],
                default="unlabeled",
            ),
        }
    )
    points = points.loc[points["kind"] != "unlabeled"]
    shown = points.iloc[sample_positions(len(points), MAX_SCATTER_POINTS)]
    figure = go.Figure()
    # Ties last so the few of them are drawn on top of the crowd at zero.
    styles = (
        ("up", "1 up", UP, "triangle-up", 4),
        ("not up", "0 down", NOT_UP, "triangle-down", 4),
        ("tie", "0 tie", TIE, "diamond", 6),
    )
    for kind, name, colour, symbol, size in styles:
        subset = shown.loc[shown["kind"] == kind]
        figure.add_trace(
            go.Scatter(
                x=subset["open_time"],
                y=subset["log_return"],
                mode="markers",
                name=f"{name}: {int((points['kind'] == kind).sum()):,}",
                marker=dict(color=colour, symbol=symbol, size=size, opacity=0.7, line_width=0),
            )
        )
    sampled = f"{len(shown):,} of {len(points):,} shown"
    figure.update_layout(
        **_BASE_LAYOUT,
        height=420,
        title=chart_title(subject, f"{interval} log return by label ({sampled})"),
        yaxis_title="log return",
        yaxis_tickformat=".2%",
        xaxis_range=[labeled["open_time"].iloc[0], labeled["open_time"].iloc[-1]],
    )
    return figure


def equity_curve_figure(backtest: Backtest) -> go.Figure:
    """Each strategy's equity (1 = the starting capital): after costs in the top panel, before
    costs in the bottom one, each line thinned to at most MAX_EQUITY_POINTS points."""
    shown = evenly_spaced(backtest.candles, MAX_EQUITY_POINTS)
    times = backtest.times.to_numpy()[shown]
    panels = (f"after costs ({backtest.costs.side_bps:g} bps a side)", "before costs")
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=panels)
    for name, result in backtest.strategies.items():
        for row, equity in ((1, result.net_equity), (2, result.gross_equity)):
            figure.add_trace(
                go.Scatter(
                    x=times,
                    y=equity[shown],
                    mode="lines",
                    name=STRATEGY_NAMES.get(name, name),
                    legendgroup=name,
                    showlegend=row == 1,
                    line=dict(width=1.4, color=STRATEGY_COLOURS.get(name)),
                ),
                row=row,
                col=1,
            )
    sampled = f"{len(shown):,} of {backtest.candles:,} candles shown" if len(shown) < backtest.candles else ""
    figure.update_layout(
        **{**_BASE_LAYOUT, "legend": dict(orientation="h", yanchor="top", y=-0.06, xanchor="left", x=0.0)},
        height=760,
        title=f"Equity of each strategy, {backtest.interval} candles" + (f" ({sampled})" if sampled else ""),
    )
    figure.update_yaxes(title_text="equity")
    return figure


def figure_png(figure: go.Figure) -> bytes:
    """``figure`` rendered by kaleido at SCALE times its layout size."""
    return pio.to_image(figure, format="png", engine="kaleido", scale=SCALE)


def write_chart_pngs(figures: Iterable[tuple[str, go.Figure]], folder: Path) -> list[Path]:
    """Render each ``(name, figure)`` to ``folder/<name>.png`` in one kaleido session.

    kaleido 0.2.1 keeps its Chromium process alive inside ``plotly.io``'s scope between
    calls, so only the first figure pays the start-up cost. One worker thread talks to
    Chromium while this thread builds the next figure: ``figures`` may be a lazy iterable,
    and Chromium's start-up overlaps building the first one.
    """
    # Setting any scope option (mathjax, ...) restarts Chromium, so none is touched here.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaleido") as renderer:
        renderer.submit(start_kaleido)
        pending = [renderer.submit(_write_png, figure, folder / f"{name}.png") for name, figure in figures]
        return [future.result() for future in pending]


def start_kaleido() -> None:
    """Start kaleido's Chromium now (it stays up for the process); a no-op once it runs.

    A tiny render is the public way to start it; a failure resurfaces on a real chart.
    """
    try:
        pio.to_image(go.Figure(), format="png", engine="kaleido", width=16, height=16)
    except Exception:  # noqa: BLE001
        pass


def _write_png(figure: go.Figure, path: Path) -> Path:
    path.write_bytes(figure_png(figure))
    return path
