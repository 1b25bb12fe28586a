"""The ``performance_tracker`` daemon and the ``rl_performance`` command.

    python analytics/rl_performance.py --track               # record the weights in force now
    python analytics/rl_performance.py --report [--as-of D]  # write the report and its plots, print a summary
    python analytics/rl_performance.py --loop                # the ``performance_tracker`` daemon

Daemon (``--loop``). At start it runs the portfolio optimizer, the strategy lab, one track and one report; then
an APScheduler BackgroundScheduler tracks every ``performance.track_interval_s`` seconds (on its own worker, so a
long report never delays the weight history) and runs the report, the optimizer and the lab on their cron
schedules (UTC) on one worker thread (they never overlap), so the bridge's fallback sources exist in a running
system. Until each fallback source has published once it is retried within seconds of every change of the trade
history (checked every ``UNPUBLISHED_CHECK_S``), so the bridge's fallback chain is complete as soon as enough
trades exist, not one track interval (five minutes) later. Every job refreshes
the heartbeat; a failing job is logged and recorded in it without ending the daemon; SIGTERM lets the running
job finish and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from analytics import portfolio_optimizer as po
from analytics import strategy_lab as lab
from analytics.performance.rebalance_memo import save_between_runs
from analytics.performance.report import summary_text, write_report
from analytics.performance.settings import check_performance_config
from analytics.performance.tracking import track_weights
from analytics.returns import cache_history_reads, read_history_incrementally
from analytics.weight_source import parse_date
from core.atomic import utc_now_iso
from core.cli import add_config_argument, load_command_config
from core.config import Config
from core.contracts.performance import PRODUCER, REPORT_NAME, WEIGHT_HISTORY_NAME, weight_history_path
from core.contracts.pnl_history import history_path
from core.daemon import DaemonContext, run_daemon_main
from core.errors import ExitCode, FatalError
from core.logging_setup import setup_logging
from core.schedule import cron_trigger

log = logging.getLogger(__name__)

DAEMON_NAME = PRODUCER
"""The daemon's name (heartbeat, pid and log files) and the report's producer."""
HEARTBEAT_S = 30.0
"""Seconds between heartbeats while no job runs."""
UNPUBLISHED_CHECK_S = 5.0
"""Seconds between checks of the trade history while a fallback source has never published."""
JOB_IDS: tuple[str, ...] = ("track", "report", "portfolio_optimizer", "strategy_lab", "unpublished_sources")


def check_all_config(cfg: Config) -> None:
    """Everything the daemon runs, checked before it starts: its own section, the optimizer's and the lab's."""
    check_performance_config(cfg)
    po.check_optimizer_config(cfg)
    lab.check_lab_config(cfg)


def run_guarded(ctx: DaemonContext, job: str, action: Callable[[], object]) -> bool:
    """Run one job; log and record a failure in the heartbeat instead of letting it end the daemon."""
    try:
        action()
    except OSError as exc:
        # A read-only folder or a full disk: logged once per distinct error, the heartbeat says degraded, the
        # job's next run (its schedule is the backoff) tries again; the files it writes keep their content.
        ctx.write_failed(job, exc)
        ctx.beat(last_error=f"{job}: {exc}", last_error_at=utc_now_iso())
        return False
    except Exception as exc:  # noqa: BLE001 - one failing job must not stop the other three
        log.exception("job %s failed", job)
        ctx.beat(state="error", last_error=f"{job}: {exc}", last_error_at=utc_now_iso())
        return False
    ctx.write_ok(job)
    ctx.beat(state="running", **{f"last_{job}_at": utc_now_iso()})
    return True


def track_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "track", lambda: track_weights(cfg))


def report_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "report", lambda: write_report(cfg))


def optimizer_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "portfolio_optimizer", lambda: po.run_once(cfg))


def lab_job(cfg: Config, ctx: DaemonContext) -> None:
    run_guarded(ctx, "strategy_lab", lambda: lab.run_once(cfg))


def unpublished_sources_job(cfg: Config, ctx: DaemonContext) -> None:
    """Retry the fallback sources that have not published yet: on a fresh machine the history is empty when the
    daemon starts, and their cron runs are hours apart, so the bridge would have no fallback until then."""
    if not po.output_path(cfg).exists():
        optimizer_job(cfg, ctx)
    if not lab.output_path(cfg).exists():
        lab_job(cfg, ctx)


class UnpublishedSources:
    """The short-interval check behind :func:`unpublished_sources_job`: it runs the job only while a fallback
    source has never published and only when the trade history changed since the last try (size or mtime),
    so a quiet history is not re-read, nor a "not enough history" warning logged, every few seconds."""

    def __init__(self, cfg: Config, ctx: DaemonContext) -> None:
        self.cfg, self.ctx = cfg, ctx
        self._tried: tuple[int, int] | None = None

    def pending(self) -> bool:
        return not (po.output_path(self.cfg).exists() and lab.output_path(self.cfg).exists())

    def __call__(self) -> bool:
        """Try the unpublished sources if the history changed; True when a try was made."""
        if not self.pending():
            return False
        try:
            stat = history_path(self.cfg).stat()
        except FileNotFoundError:
            return False
        seen = (stat.st_size, stat.st_mtime_ns)
        if seen == self._tried:
            return False
        self._tried = seen
        unpublished_sources_job(self.cfg, self.ctx)
        return True


def build_scheduler(cfg: Config, ctx: DaemonContext) -> BackgroundScheduler:
    """The report and the fallback sources on one worker thread (never two at once); tracking on its own, so a
    long report never delays the weight history. Missed runs coalesced, minutes of grace."""
    pc = cfg.performance
    scheduler = BackgroundScheduler(
        timezone=timezone.utc,
        executors={"default": ThreadPoolExecutor(max_workers=1), "track": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": pc.misfire_grace_s},
    )
    args = (cfg, ctx)
    scheduler.add_job(track_job, IntervalTrigger(seconds=pc.track_interval_s, timezone=timezone.utc), args=args,
                      id="track", name="record the weights in force", executor="track")
    scheduler.add_job(report_job, cron_trigger(pc.report_cron, "performance.report_cron"), args=args,
                      id="report", name="write the performance report")
    scheduler.add_job(optimizer_job, cron_trigger(pc.portfolio_optimizer_cron, "performance.portfolio_optimizer_cron"),
                      args=args, id="portfolio_optimizer", name="publish portfolio optimizer weights")
    scheduler.add_job(lab_job, cron_trigger(pc.strategy_lab_cron, "performance.strategy_lab_cron"), args=args,
                      id="strategy_lab", name="publish strategy lab weights")
    check_s = min(pc.track_interval_s, UNPUBLISHED_CHECK_S)
    scheduler.add_job(UnpublishedSources(cfg, ctx), IntervalTrigger(seconds=check_s, timezone=timezone.utc),
                      id="unpublished_sources", name="publish fallback sources as soon as enough trades exist")
    return scheduler


def run_daemon(cfg: Config, ctx: DaemonContext) -> None:
    """Run the fallback sources, a track and a report once, then the scheduler until SIGTERM/SIGINT."""
    read_history_incrementally(cfg)  # every report and fallback run parses only the trades appended since the last
    save_between_runs(cfg)  # and each report recomputes only the baseline rebalances whose trades changed
    for job in (optimizer_job, lab_job, track_job, report_job):
        if ctx.stop.is_set():
            return
        job(cfg, ctx)
    scheduler = build_scheduler(cfg, ctx)
    scheduler.start()
    log.info("scheduled: %s", "; ".join(f"{j.id} ({j.trigger})" for j in scheduler.get_jobs()))
    try:
        while not ctx.wait(HEARTBEAT_S):
            ctx.beat()  # between jobs too: a status check must not take a daemon idle for minutes for dead
    finally:
        scheduler.shutdown(wait=True)  # lets a running job finish its write


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl_performance",
        description=f"Track the strategy weights in force (state/{WEIGHT_HISTORY_NAME}), report the allocated "
                    "portfolio against equal weights, the portfolio optimizer, the strategy lab and each single "
                    f"strategy (state/{REPORT_NAME} and PNG plots next to it), or run all of it as "
                    "the performance_tracker daemon. Exit codes: 0 done, 1 cannot write, 2 bad config or input.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--track", action="store_true", help="record the weights in force now and exit")
    mode.add_argument("--report", action="store_true", help="write the report and plots, print a summary, exit")
    mode.add_argument("--loop", action="store_true",
                      help="daemon: track on an interval, report and run the fallback sources on cron schedules")
    parser.add_argument("--as-of", type=parse_date, metavar="YYYY-MM-DD",
                        help="with --report: last day of the report (default: the day of the newest trade, UTC)")
    parser.add_argument("--no-plots", action="store_true", help="with --report: skip the PNG plots")
    add_config_argument(parser)
    return parser


def _checked_config(cfg: Config, loop: bool) -> Config:
    if loop:
        check_all_config(cfg)
    else:
        check_performance_config(cfg)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.report and (args.as_of or args.no_plots):
        parser.error("--as-of and --no-plots only apply to --report")
    cfg = load_command_config("rl_performance", args.config, lambda c: _checked_config(c, args.loop))
    if cfg is None:
        return ExitCode.BAD_INPUT
    if args.loop:
        return _loop(cfg)
    setup_logging(cfg)
    try:
        if args.track:
            record = track_weights(cfg)
            print(f"{weight_history_path(cfg)}: recorded weights from {record['source']}: "
                  + ", ".join(f"{s}={w:.3f}" for s, w in record["weights"].items()))
            return ExitCode.OK
        cache_history_reads(cfg)  # the next --report parses only the trades appended since this one
        save_between_runs(cfg)
        result = write_report(cfg, args.as_of, with_plots=False if args.no_plots else None)
    except FatalError as exc:  # e.g. a column missing in the trade history
        print(f"rl_performance: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except OSError as exc:
        print(f"rl_performance: error: cannot write under {cfg.state_dir}: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    print(f"wrote {result.path}")
    print(summary_text(result.document))
    return ExitCode.OK


def _loop(cfg: Config) -> int:
    return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: run_daemon(cfg, ctx))


if __name__ == "__main__":
    sys.exit(main())
