"""The shadow daemon's retrain schedule, kept apart from the retraining itself so that a daemon at rest never
imports torch: the job imports :mod:`ai.trading.retrain` (and with it the PPO) only when it runs."""

from __future__ import annotations

import logging
import threading
from datetime import timezone
from typing import Any

from core.config import Config
from core.schedule import cron_trigger

log = logging.getLogger(__name__)

RETRAIN_JOB_ID = "shadow_ppo_retrain"


def run_scheduled_retrain(cfg: Config, stop: threading.Event) -> None:
    """The scheduler's job: :func:`ai.trading.retrain.scheduled_retrain`, loaded when it is due."""
    from ai.trading.retrain import scheduled_retrain

    scheduled_retrain(cfg, stop)


def start_scheduler(cfg: Config, stop: threading.Event) -> Any:
    """A background APScheduler with the retrain job; returns it started."""
    from apscheduler.schedulers.background import BackgroundScheduler

    trigger = cron_trigger(cfg.trading_agent.retrain_cron, "trading_agent.retrain_cron")
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.add_job(run_scheduled_retrain, trigger, args=[cfg, stop], id=RETRAIN_JOB_ID,
                      name="retrain trading PPO", coalesce=True, max_instances=1,
                      misfire_grace_time=cfg.trading_agent.retrain_misfire_grace_s, replace_existing=True)
    scheduler.start()
    job = scheduler.get_job(RETRAIN_JOB_ID)
    log.info("retraining scheduled by cron %r (UTC); next run %s", cfg.trading_agent.retrain_cron,
             job.next_run_time.isoformat() if job and job.next_run_time else "never")
    return scheduler
