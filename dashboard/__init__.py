"""The dashboard: one read-only web page of the running suite, served on loopback by ``scripts/dashboard.py``.

Each panel's data is assembled by its own module from the suite's published files, through the tolerant
readers of :mod:`core.contracts` (and the Q-learning health and tuning functions of :mod:`ai.tabular`, the
performance replay of :mod:`analytics.performance`); nothing here writes a file of the suite. ``app`` serves
the page (``static/``) and one JSON route per panel under ``/api/``; ``live`` tells the page when a file changed
(server-sent events); ``security`` holds the token and header rules; ``cli`` is the daemon command.
"""
