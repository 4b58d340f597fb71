"""Figure 8b: wall time and peak memory of the whole-graph run on three years of candles
(1,576,800), measured as figure 8 (``benchmarks.graph_year``); no target, printed."""

from __future__ import annotations

import argparse

from benchmarks.graph_year import DAYS, whole_graph_figure
from benchmarks.harness import Figure


def run(options: argparse.Namespace) -> list[Figure]:
    return [whole_graph_figure("8b", 3 * DAYS, "3 years", options.runs)]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
