"""Experiment sweeps: one agent trained over many symbols, seeds and settings, ranked out of sample.

Modules: :mod:`~ai.sweeps.spec` (the grid, the trials and their names), :mod:`~ai.sweeps.trial` (the trial
function, a plain function Ray runs as a task), :mod:`~ai.sweeps.trading_trial` and
:mod:`~ai.sweeps.allocation_trial` (each agent's training and out-of-sample evaluation, with the functions its
daemon uses), :mod:`~ai.sweeps.backends` (sequential and Ray), :mod:`~ai.sweeps.sweep` (resume, records,
progress), :mod:`~ai.sweeps.leaderboard`, :mod:`~ai.sweeps.promote` and :mod:`~ai.sweeps.cli`
(``python ai/experiments.py``). The files are those of :mod:`core.contracts.experiments`.
"""
