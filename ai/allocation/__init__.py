"""The strategy-weight agent: 42 features (:mod:`~ai.allocation.features`), the environment
(:mod:`~ai.allocation.env`), the agent and its checkpoints (:mod:`~ai.allocation.agent`), training
(:mod:`~ai.allocation.training_data`, :mod:`~ai.allocation.training`, :mod:`~ai.allocation.validation`), the
``rl_trainer`` command and daemon (:mod:`~ai.allocation.trainer`, :mod:`~ai.allocation.trainer_daemon`) and
the ``rl_inference`` command and daemon (:mod:`~ai.allocation.inference`)."""
