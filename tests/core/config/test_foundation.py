"""core.config.foundation: paths, market, exchange, costs, synthetic market and logging check their values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config


@pytest.mark.parametrize(("body", "fragment"), [
    ('[market]\nsymbols = []\n', "market.symbols = []: list at least one symbol"),
    ('[market]\nsymbols = ["BTC/USDT", "BTC/USDT"]\n', "listed twice"),
    ('[market]\ntimeframe = "1x"\n', "market.timeframe = '1x': must be a ccxt timeframe"),
    ('[market]\ndata_source = "kraken"\n', "market.data_source = 'kraken': must be one of synthetic, csv, ccxt"),
    ('[market]\ncalendar = "forex"\n', "market.calendar = 'forex': must be one of crypto, equity"),
    ('[exchange]\nurl = "127.0.0.1:8080"\n', "exchange.url = '127.0.0.1:8080': must be empty or an absolute"),
    ('[exchange]\nmax_retries = -1\n', "exchange.max_retries = -1: must be >= 0"),
    ('[exchange]\npage_limit = 0\n', "exchange.page_limit = 0: must be >= 1"),
    ('[costs]\nfee = -0.001\n', "costs.fee = -0.001: must be a fraction in [0, 1)"),
    ('[costs]\nslippage = 1.5\n', "costs.slippage = 1.5"),
    ('[logging]\nlevel = "LOUD"\n', "logging.level = 'LOUD': must be one of DEBUG"),
    ('[logging]\njsonl_max_lines = 0\n', "logging.jsonl_max_lines = 0: must be >= 1"),
])
def test_foundation_sections_check_their_values(tmp_path: Path, body: str, fragment: str, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any]) -> None:
    assert_config_error(write_toml(tmp_path, body), fragment)


def test_accepted_values_of_checked_keys(tmp_path: Path, write_toml: Callable[..., Any]) -> None:
    path = write_toml(tmp_path, """\
        [market]
        symbols = ["SPY"]
        timeframe = "30s"
        data_source = "ccxt"
        calendar = "equity"
        [exchange]
        url = "https://proxy.example:8443/binance"
        max_retries = 0
        [logging]
        level = "debug"
        """)
    cfg = load_config(path)
    assert cfg.market.symbols == ["SPY"] and cfg.market.timeframe == "30s" and cfg.logging.level == "debug"


@pytest.mark.parametrize(("body", "fragment"), [
    ("[synthetic]\nn_candles = 0\n", "synthetic.n_candles = 0: must be >= 1"),
    ('[synthetic]\nstart = "yesterday"\n', "synthetic.start = 'yesterday': must be an ISO-8601 time"),
    ("[synthetic]\nstart_prices = [1.0, -2.0]\n", "synthetic.start_prices = [1.0, -2.0]: must be a non-empty list"),
    ("[synthetic]\nstart_prices = []\n", "synthetic.start_prices = []"),
    ("[synthetic]\ncorrelation = 1.0\n", "synthetic.correlation = 1.0: must be strictly between 0 and 1"),
    ("[synthetic]\nannual_volatility = 0\n", "synthetic.annual_volatility = 0.0: must be > 0"),
    ("[synthetic]\nmean_regime_candles = 4\n", "synthetic.mean_regime_candles = 4: must be >= 5"),
])
def test_synthetic_market_settings_are_checked_at_load(tmp_path: Path, body: str, fragment: str,
                                                        write_toml: Callable[..., Any],
                                                        assert_config_error: Callable[..., Any]) -> None:
    assert_config_error(write_toml(tmp_path, body), fragment)
