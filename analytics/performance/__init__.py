"""Performance of the allocations as actually used, against baselines: the ``performance_tracker`` daemon.

- :mod:`~analytics.performance.tracking`: the weight history (record the weights in force, read them back);
- :mod:`~analytics.performance.replay`: the strategies' daily returns under each portfolio's weights;
- :mod:`~analytics.performance.figures`: the figures of one report window;
- :mod:`~analytics.performance.report`: the report document and its text summary;
- :mod:`~analytics.performance.plots`: the three PNG plots;
- :mod:`~analytics.performance.settings`: the ``[performance]`` section's checks;
- :mod:`~analytics.performance.daemon`: the scheduler with the fallback-source jobs and the command's ``main``.

The files it writes are owned by :mod:`core.contracts.performance`.
"""
