"""The benchmark suite: ``python -m benchmarks [--candles FILE] [--quick]`` (``make bench``).

One module per figure, each runnable alone (``python -m benchmarks.upsert --runs 3``) and run by
``__main__`` in its own process, so each figure's peak memory is its own. Results are printed
and written to ``benchmarks/RESULTS.md``.
"""
