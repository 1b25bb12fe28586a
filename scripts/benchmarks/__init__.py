"""The parts of ``python scripts/benchmark.py``: one module per group of rows of the speed table.

Each part returns :class:`benchmarks.rows.Row` objects; :mod:`benchmarks.stats` holds the median and percentile
helpers and the timing loop, :mod:`benchmarks.rows` the table, the verdicts and the machine's description.
"""
