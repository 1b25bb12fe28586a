"""The shadow daemon's decision step: which candles are new, the decision on each, and the realized experience.

Which candles are "newly closed". The market's clock is the paper trader's: when it publishes a fresh status
(:mod:`core.contracts.trader_status`) for the same symbol and timeframe (``trading_agent.follow_trader``), the
runner follows its replay: candles up to the trader's ``last_candle.timestamp`` count as closed, so a synthetic
or CSV replay is shadowed at the trader's pace. In a replay the runner keeps
``trading_agent.replay_lead_candles`` ahead of the trader's last candle: the trader publishes its status only
every few seconds, so without a lead each decision would reach it candles too late for the PPO book to follow
(a decision still uses only the candles up to its own).

In a replay (synthetic or CSV candles) without the trader's clock (no status yet, a stale one, or one before
its first candle) the runner waits for it: the candles all exist already, and deciding on the newest of them
would put the shadow at the end of the data, months after the candles the trader is about to trade. Its first
decision is then on the trader's candle. A saved cursor beyond the trader's reach (a new replay, or a cursor
left by an older version that decided on the last candle) restarts the shadow account at the trader's candle.
With exchange candles (``ccxt``) and no trader the runner polls the exchange itself and acts on candles newer
than its last decision: on a first start the newest candle only (no deciding on the past); after a pause it
catches up on at most ``trading_agent.max_catch_up_candles`` candles.

No look-ahead: a candle is decided on only when it opened after the newest candle the model was trained on
(:attr:`ai.trading.common.TradingModel.trained_until`); earlier candles are skipped with the reason in the log
and in :attr:`ShadowRunner.waiting`.

Each decision (:mod:`core.contracts.shadow_decisions`) is the model's deterministic action on the observation
of that candle, with the shadow account's resulting exposure and the ``shadow_mode`` flag. The shadow account
applies the decisions with the environment's accounting (:mod:`ai.trading.account`), so once the next candle
closes the realized experience (observation, action, reward, next observation, and both candles) is
appended to the experiences (:mod:`core.contracts.shadow_status`). The cursor, the pending decision and the
shadow account are saved in the shadow state after every candle, so a restart resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ai.trading.account import Account, next_exposure
from ai.trading.common import (
    TradingModel,
    candles_until,
    finite_or_none,
    is_replay_source,
    trader_clock,
    trading_symbol,
)
from ai.trading.features import assemble
from ai.trading.market_features import MarketFeatures, compute_market_features
from ai.trading.options import options_from_config
from core.atomic import utc_now_iso
from core.config import Config
from core.contracts.rollout import shadow_mode
from core.contracts.shadow_decisions import append_decision
from core.contracts.shadow_status import (
    CandleRow,
    Experience,
    PendingDecision,
    append_experience,
    read_shadow_state,
    shadow_state_path,
)
from core.contracts.shadow_status import (
    save_shadow_state as write_shadow_state,
)
from core.timeframes import ms_to_iso, timeframe_to_ms
from market.frames import COLUMNS

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------- shadow state


@dataclass
class ShadowState:
    """What the daemon resumes from: its cursor, the decision waiting for its next candle, the shadow account."""

    symbol: str
    timeframe: str
    cursor_ts: int | None = None
    pending: PendingDecision | None = None
    account: dict[str, float] | None = None
    decisions: int = 0
    experiences: int = 0
    last_decision_at: str | None = None
    followed_trader: bool = False
    trader_ts: int | None = None


def load_shadow_state(cfg: Config, symbol: str, timeframe: str) -> ShadowState:
    """The saved state for ``symbol`` / ``timeframe``, or a fresh one (a state of another market is not reused)."""
    result = read_shadow_state(cfg)
    fresh = ShadowState(symbol, timeframe)
    if not result.ok or result.data is None:
        if result.status != "absent":
            log.warning("starting a fresh shadow state: %s", result.reason)
        return fresh
    doc = result.data
    if doc.get("symbol") != symbol or doc.get("timeframe") != timeframe:
        log.info("shadow state was for %s %s; starting fresh for %s %s", doc.get("symbol"), doc.get("timeframe"),
                 symbol, timeframe)
        return fresh
    try:
        saved: dict[str, Any] = {k: doc.get(k) for k in asdict(fresh)}
        state = ShadowState(**saved)
        state.decisions, state.experiences = int(state.decisions or 0), int(state.experiences or 0)
        state.followed_trader = bool(state.followed_trader)
        if state.account is not None:
            Account.from_row(state.account)
        return state
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("starting a fresh shadow state: %s is invalid (%s)", shadow_state_path(cfg).name, exc)
        return fresh


def save_shadow_state(cfg: Config, state: ShadowState) -> None:
    write_shadow_state(cfg, finite_or_none(asdict(state)))


def trader_horizon(cfg: Config, symbol: str, timeframe: str) -> int | None:
    """Timestamp of the trader's last processed candle when its status file is fresh and for this market."""
    return trader_clock(cfg, symbol, timeframe)


def _candle_row(frame: pd.DataFrame, i: int) -> CandleRow:
    row = frame.iloc[i]
    values = {c: float(row[c]) for c in COLUMNS[1:]}
    return CandleRow(timestamp=int(row["timestamp"]), open=values["open"], high=values["high"], low=values["low"],
                     close=values["close"], volume=values["volume"])


def _vector(values: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in values]


# ------------------------------------------------------------------------------------------------- the runner


class ShadowRunner:
    """Decides on new candles with a model and records experiences; the daemon calls :meth:`poll`."""

    def __init__(self, cfg: Config, model: TradingModel) -> None:
        self.cfg = cfg
        self.model = model
        self.symbol = trading_symbol(cfg)
        self.timeframe = cfg.market.timeframe
        self.step_ms = timeframe_to_ms(self.timeframe)
        self.options = options_from_config(cfg)
        self.state = load_shadow_state(cfg, self.symbol, self.timeframe)
        self.account = (Account.from_row(self.state.account) if self.state.account
                        else Account.flat(1, self.options.initial_equity))
        self.waiting: str | None = None
        """Why the last poll made no decision it could otherwise have made (None when nothing held it back)."""

    def _wait_for(self, reason: str | None) -> None:
        """Record why the runner holds back (logged once per distinct reason); None clears it."""
        if reason is not None and reason != self.waiting:
            log.info("%s", reason)
        self.waiting = reason

    # -- candles ---------------------------------------------------------------------------------------------

    def _may_have_new(self, horizon: int | None) -> bool:
        cursor = self.state.cursor_ts
        if horizon is None and self.cfg.trading_agent.follow_trader and is_replay_source(self.cfg):
            # A replay's candles all exist already: without the trader's clock the daemon would decide at the
            # end of the data (or race to it), so it waits for the trader's status and starts at its candle.
            self._wait_for("waiting for the paper trader's status (its clock): in a replay the shadow decides "
                           "from the trader's candle on, never on candles the trader has not reached")
            return False
        if cursor is None:
            return True
        if horizon is not None:
            return horizon > cursor
        # The candle after the cursor closes one timeframe after it opens: no need to ask before then.
        return time.time() * 1000 >= cursor + 2 * self.step_ms

    def load_closed_candles(self, horizon: int | None, first_ts: int | None = None) -> pd.DataFrame:
        """The source's candles, cut at ``horizon`` (a synthetic market is grown to reach it); only as many as a
        poll can use (:meth:`candles_needed`)."""
        return candles_until(self.cfg, self.symbol, horizon, window=self.candles_needed(horizon, first_ts))

    def candles_needed(self, horizon: int | None, first_ts: int | None) -> int | None:
        """The candles up to ``horizon`` a poll can use: those after the cursor (or from the trader's candle
        ``first_ts`` on a first start; the newest alone without it) plus the features' history before them."""
        if horizon is None:
            return None
        since = self.state.cursor_ts if self.state.cursor_ts is not None else first_ts
        decide = 1 if since is None else max(0, (horizon - since) // self.step_ms) + 1
        return decide + self.cfg.trading_agent.feature_history + 1

    def replay_reach(self, horizon: int | None) -> int | None:
        """The newest candle to decide on: the trader's, plus ``replay_lead_candles`` in a replay (its later
        candles exist already; deciding them ahead lets the trader find each candle's decision in time)."""
        if horizon is None or self.cfg.market.data_source.strip().lower() == "ccxt":
            return horizon
        return horizon + self.cfg.trading_agent.replay_lead_candles * self.step_ms

    def new_positions(self, frame: pd.DataFrame, first_ts: int | None = None) -> np.ndarray:
        """Positions in ``frame`` of the candles to decide on now.

        On a first start that is the newest candle only (no deciding on the past), or, following the trader,
        its candle ``first_ts`` and those after it.
        """
        if frame.empty:
            return np.array([], dtype=np.int64)
        ts = frame["timestamp"].to_numpy(np.int64)
        if self.state.cursor_ts is None:
            if first_ts is not None and np.any(ts >= first_ts):
                return np.flatnonzero(ts >= first_ts)[:self.cfg.trading_agent.max_catch_up_candles]
            return np.array([len(ts) - 1])
        positions = np.flatnonzero(ts > self.state.cursor_ts)
        limit = self.cfg.trading_agent.max_catch_up_candles
        if positions.size > limit:
            log.warning("%d candles since the last decision; deciding on the newest %d only", positions.size, limit)
            positions = positions[-limit:]
        return positions

    def _restart_if_rewound(self, horizon: int | None, reach: int | None) -> None:
        """Start the shadow account again at the trader's candle when the trader went back in time (a new
        replay), or when the saved cursor lies beyond where the trader's clock lets the runner decide."""
        previous, cursor = self.state.trader_ts, self.state.cursor_ts
        if horizon is None or reach is None:
            return
        went_back = previous is not None and horizon < previous
        beyond = cursor is not None and cursor > reach and is_replay_source(self.cfg)
        if went_back and previous is not None:
            why = f"back from {ms_to_iso(previous)} (a new replay)"
        elif beyond and cursor is not None:
            why = f"before the saved cursor {ms_to_iso(cursor)}"
        else:
            return
        log.warning("the trader's clock is at %s, %s; restarting the shadow account there", ms_to_iso(horizon), why)
        self.state = ShadowState(self.symbol, self.timeframe, decisions=self.state.decisions,
                                 experiences=self.state.experiences, followed_trader=True)
        self.account = Account.flat(1, self.options.initial_equity)

    def unseen(self, frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        """The ``positions`` whose candle opened after the newest candle the model was trained on.

        A model decides at a candle only when it has not seen it or anything after it; the others are skipped
        (no decision, no cursor move) and the reason is logged once.
        """
        end = self.model.trained_until
        if end is None or positions.size == 0:
            return positions
        keep = positions[frame["timestamp"].to_numpy(np.int64)[positions] > end]
        if keep.size < positions.size:
            self._wait_for(f"the model was trained on candles up to {ms_to_iso(end)}: no decision on candles up to "
                           "then (it has seen them); deciding from the first candle after it. Train a model on "
                           "candles before the replay's start to shadow it from its first candle")
        return keep

    def poll(self, budget: int | None = None, stop: threading.Event | None = None) -> int:
        """Decide on every newly closed candle (at most ``budget``); returns the decisions made."""
        horizon = trader_horizon(self.cfg, self.symbol, self.timeframe)
        reach = self.replay_reach(horizon)
        self._restart_if_rewound(horizon, reach)
        if horizon is not None:
            self.state.followed_trader = True
            self.state.trader_ts = horizon
        if not self._may_have_new(reach):
            return 0
        frame = self.load_closed_candles(reach, horizon)
        positions = self.unseen(frame, self.new_positions(frame, horizon))
        if positions.size:
            self._wait_for(None)
        if budget is not None:
            positions = positions[:max(0, budget)]
        if positions.size == 0:
            return 0
        first = max(0, int(positions[0]) - self.cfg.trading_agent.feature_history)
        window = frame.iloc[first:int(positions[-1]) + 1].reset_index(drop=True)
        features = compute_market_features(window, self.options.high_volatility_percentile)
        made = 0
        for position in positions:
            if stop is not None and stop.is_set():
                break
            self.process(window, features, int(position) - first)
            made += 1
        return made

    # -- one candle ------------------------------------------------------------------------------------------

    def observation(self, features: MarketFeatures, j: int) -> np.ndarray:
        return assemble(features.values[j:j + 1], self.account.raw_features(features.direction[j:j + 1],
                                                                             self.options))[0]

    def process(self, window: pd.DataFrame, features: MarketFeatures, j: int) -> dict[str, Any]:
        """Settle the pending decision with candle ``j`` (an experience), then decide on candle ``j``."""
        pending = self.state.pending
        if pending is not None:
            if j > 0 and int(pending["timestamp"]) == int(features.timestamps[j - 1]):
                self.record_experience(window, features, j, pending)
            else:
                log.info("candle %s does not follow the pending decision's candle %s: no experience for it",
                         ms_to_iso(int(features.timestamps[j])), ms_to_iso(int(pending["timestamp"])))
            # Settled: if writing the next decision fails, its retry must not record (and step) this one again.
            self.state.pending = None
        return self.decide(window, features, j)

    def record_experience(self, window: pd.DataFrame, features: MarketFeatures, j: int,
                          pending: PendingDecision) -> Experience:
        outcome = self.account.step(np.array([int(pending["action"])]), np.array([float(pending["close"])]),
                                    np.array([features.closes[j]]), np.array([bool(pending["high_volatility"])]),
                                    np.array([float(pending["direction"])]), self.options)
        record: Experience = {
            "timestamp": int(pending["timestamp"]),
            "next_timestamp": int(features.timestamps[j]),
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "observation": pending["observation"],
            "action": int(pending["action"]),
            "action_name": pending["action_name"],
            "reward": float(outcome.reward[0]),
            "next_observation": _vector(self.observation(features, j)),
            "step_return": float(outcome.step_return[0]),
            "exposure": float(self.account.exposure[0]),
            "equity": float(self.account.equity[0]),
            "terminated": bool(outcome.terminated[0]),
            "candle": pending["candle"],
            "next_candle": _candle_row(window, j),
            "recorded_at": utc_now_iso(),
        }
        append_experience(self.cfg, record)
        self.state.experiences += 1
        if outcome.terminated[0]:
            log.warning("the shadow account fell to %.2f (wiped out); it starts again from %.2f",
                        float(self.account.equity[0]), self.options.initial_equity)
            self.account = Account.flat(1, self.options.initial_equity)
        return record

    def decide(self, window: pd.DataFrame, features: MarketFeatures, j: int) -> dict[str, Any]:
        observation = self.observation(features, j)
        prediction = self.model.predict(observation)
        previous = float(self.account.exposure[0])
        target = float(next_exposure(self.account.exposure, np.array([prediction.action]), self.options)[0])
        ts = int(features.timestamps[j])
        record = {
            "timestamp": ts,
            "candle_time": ms_to_iso(ts),
            "decided_at": utc_now_iso(),
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "close": float(features.closes[j]),
            **prediction.as_dict(),
            "previous_exposure": previous,
            "exposure": target,
            "shadow_equity": float(self.account.equity[0]),
            "shadow_mode": shadow_mode(self.cfg),
            "model_sha256": self.model.sha256,
        }
        append_decision(self.cfg, finite_or_none(record))
        self.state.pending = PendingDecision({
            "timestamp": ts, "close": float(features.closes[j]), "observation": _vector(observation),
            "action": prediction.action, "action_name": prediction.action_name,
            "high_volatility": bool(features.high_volatility[j]), "direction": float(features.direction[j]),
            "candle": _candle_row(window, j),
        })
        self.state.cursor_ts = ts
        self.state.decisions += 1
        self.state.last_decision_at = record["decided_at"]
        self.state.account = self.account.row()
        save_shadow_state(self.cfg, self.state)
        log.info("%s %s: %s (confidence %.2f), exposure %+.2f -> %+.2f%s", self.symbol, record["candle_time"],
                 prediction.action_name, prediction.confidence, previous, target,
                 " [shadow]" if record["shadow_mode"] else "")
        return record
