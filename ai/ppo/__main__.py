"""``python -m ai.ppo``: train the PPO on a Gymnasium environment (validation presets)."""

import sys

from ai.ppo.cli import main

sys.exit(main())
