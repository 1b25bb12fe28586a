"""load_candles: the synthetic and CSV sources, limits, and the errors for unknown sources and bad limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from core.config import Config, replace_section
from core.errors import ConfigError, DataError
from market.cache import write_candles_atomic
from market.sources import load_candles

MakeCandles = Callable[..., pd.DataFrame]
AssertContract = Callable[[pd.DataFrame], None]



def test_load_candles_synthetic_default(cfg: Config, assert_contract: AssertContract) -> None:
    frames = load_candles(cfg)
    assert list(frames) == ["BTC/USDT", "ETH/USDT"]
    for frame in frames.values():
        assert len(frame) == cfg.synthetic.n_candles
        assert_contract(frame)
    tail = load_candles(cfg, ["ETH/USDT"], limit=100)["ETH/USDT"]
    pd.testing.assert_frame_equal(tail, frames["ETH/USDT"].iloc[-100:].reset_index(drop=True))
    assert not (cfg.state_dir / "candles").exists()  # loading synthetic candles writes nothing


def test_keep_last_returns_the_end_of_the_candles_asked_for(cfg: Config, rl_home: Path,
                                                            candles: MakeCandles) -> None:
    longer = load_candles(cfg, ["BTC/USDT"], limit=7000)["BTC/USDT"]  # past the configured 5,000
    end = load_candles(cfg, ["BTC/USDT"], limit=7000, keep_last=1200)["BTC/USDT"]
    pd.testing.assert_frame_equal(end, longer.iloc[-1200:].reset_index(drop=True))
    (rl_home / "data").mkdir()
    write_candles_atomic(rl_home / "data" / "btc.csv", candles(30))
    csv_cfg = replace_section(cfg, "market", data_source="csv", csv_paths={"BTC/USDT": "data/btc.csv"})
    frames = load_candles(csv_cfg, ["BTC/USDT"], limit=10, keep_last=4)
    pd.testing.assert_frame_equal(frames["BTC/USDT"], candles(30).iloc[-4:].reset_index(drop=True))
    with pytest.raises(ConfigError, match="keep_last must be a positive"):
        load_candles(cfg, keep_last=0)


def test_load_candles_csv_relative_to_home(cfg: Config, rl_home: Path, candles: MakeCandles) -> None:
    (rl_home / "data").mkdir()
    write_candles_atomic(rl_home / "data" / "btc.csv", candles(30))
    csv_cfg = replace_section(cfg, "market", data_source="csv", csv_paths={"BTC/USDT": "data/btc.csv"})
    frames = load_candles(csv_cfg, ["BTC/USDT"], limit=10)
    pd.testing.assert_frame_equal(frames["BTC/USDT"], candles(30).iloc[-10:].reset_index(drop=True))
    with pytest.raises(ConfigError, match="market.csv_paths has no file for ETH/USDT"):
        load_candles(csv_cfg, ["ETH/USDT"])
    missing = replace_section(csv_cfg, "market", csv_paths={"BTC/USDT": "data/nope.csv"})
    with pytest.raises(DataError, match="not found; fix market.csv_paths"):
        load_candles(missing, ["BTC/USDT"])


def test_load_candles_rejects_unknown_source_and_bad_limit(cfg: Config) -> None:
    with pytest.raises(ConfigError, match="market.data_source `parquet` is not known; use one of: synthetic"):
        load_candles(cfg, source="parquet")
    with pytest.raises(ConfigError, match="limit must be a positive"):
        load_candles(cfg, limit=0)
