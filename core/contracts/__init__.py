"""The files the parts of the suite share: one module per file (or family of files), and nothing else names them.

Each module holds its file's path, schema version, typed payload, validator, writer and tolerant reader, and
says in its docstring who writes the file and who reads it. Writers and readers both import the module, so the
trader side (``agents``) and the learning side (``ai``) meet here and never import each other.

=====================================================  ============================================
file                                                   module
=====================================================  ============================================
``state/pnl_history.csv``                              :mod:`core.contracts.pnl_history`
``runtime/rl_strategy_weights.json``,                  :mod:`core.contracts.weights`
``runtime/portfolio_optimizer_weights.json``,
``runtime/strategy_lab_weights.json``,
``runtime/allocations_override.json``
``runtime/trader_status.json``                         :mod:`core.contracts.trader_status`
``runtime/qlearning_policy.json``                      :mod:`core.contracts.qlearning_policy`
``state/qlearning/meta_agent.json``, ``sizing_agent.json``  :mod:`core.contracts.qtables`
``state/rl_model/`` (checkpoints, ``config.json``)     :mod:`core.contracts.allocation_model`
``state/rl_training_log.json``                         :mod:`core.contracts.training_log`
``state/rl_weight_history.jsonl``,                     :mod:`core.contracts.performance`
``state/rl_performance_report.json`` + plots
``runtime/rl_v3_rollout.json``, ``state/rl_v3/settings.json``  :mod:`core.contracts.rollout`
``runtime/rl_v3_decisions.jsonl``                      :mod:`core.contracts.shadow_decisions`
``state/rl_v3/ppo_model.pt`` (+ backup, train lock)    :mod:`core.contracts.trading_model`
``runtime/rl_v3_status.json``,                         :mod:`core.contracts.shadow_status`
``state/rl_v3/shadow_state.json``,
``state/rl_v3/experiences.jsonl``
``runtime/rl_v3_training_progress.json``,              :mod:`core.contracts.trading_reports`
``runtime/rl_v3_benchmark.json`` (+ plot),
``runtime/rl_v3_retrain.json``
``runtime/benchmarks.json``                            :mod:`core.contracts.benchmarks`
``state/experiments/<id>/`` (trials, leaderboard)      :mod:`core.contracts.experiments`
=====================================================  ============================================

Files that belong to one part alone stay with it: the candle cache (:mod:`market.cache`), heartbeats and pid
files (:mod:`core.daemon`), logs (:mod:`core.logging_setup`), the trader's own state (``trader.state_file``,
:mod:`agents.trader_state`).
"""
