"""``python -m ai.ppo``: train the PPO on a Gymnasium environment (validation presets)."""

import sys

from ai.ppo.algorithm import main

sys.exit(main())
