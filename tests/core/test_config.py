"""Configuration: frozen dataclasses, TOML overrides, strict keys and types, RL_SYSTEM_HOME, documented fields."""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import pytest

import core.config as config_module
from core.config import (
    REPO_ROOT,
    Config,
    as_dict,
    config_from_dict,
    config_path,
    load_config,
    replace_section,
)
from core.errors import ConfigError, FatalError


def write_toml(folder: Path, text: str, name: str = "custom.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- defaults and frozenness -------------------------------------------------------------------------------


def test_empty_file_gives_the_defaults(cfg: Config) -> None:
    assert cfg == Config()
    assert cfg.market.timeframe == "1h"
    assert cfg.costs.fee == 0.001


def test_config_and_every_section_are_frozen() -> None:
    cfg = Config()
    assert Config.__dataclass_params__.frozen  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.market = cfg.market  # type: ignore[misc]
    for section in dataclasses.fields(Config):
        value = getattr(cfg, section.name)
        assert dataclasses.is_dataclass(value), f"Config.{section.name} is not a dataclass section"
        assert type(value).__dataclass_params__.frozen, f"{type(value).__name__} must be frozen=True"
        first = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, first, getattr(value, first))


def test_every_field_has_a_default() -> None:
    # Config() must work with no file at all, so no section may add a required field.
    cfg = Config()
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(getattr(cfg, section.name)):
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, \
                f"{section.name}.{f.name} has no default"


def test_as_dict_round_trips_through_the_loader() -> None:
    # Every field's type must be one the TOML loader can check, and the defaults must pass their own check.
    cfg = Config()
    assert config_from_dict(as_dict(cfg)) == cfg


def test_replace_section_changes_one_copy_only() -> None:
    cfg = Config()
    changed = replace_section(cfg, "costs", fee=0.01)
    assert changed.costs.fee == 0.01
    assert cfg.costs.fee == 0.001
    assert changed.market == cfg.market


# --- where the file comes from --------------------------------------------------------------------------------


def test_toml_file_overrides_only_the_keys_it_names(tmp_path: Path) -> None:
    path = write_toml(tmp_path, """
        [market]
        symbols = ["SOL/USDT"]
        timeframe = "4h"
        csv_paths = { "SOL/USDT" = "data/sol.csv" }

        [costs]
        fee = 0.002
    """)
    cfg = load_config(path)
    assert cfg.market.symbols == ["SOL/USDT"]
    assert cfg.market.timeframe == "4h"
    assert cfg.market.csv_paths == {"SOL/USDT": "data/sol.csv"}
    assert cfg.costs.fee == 0.002
    default = Config()
    assert cfg.costs.slippage == default.costs.slippage
    assert cfg.market.data_source == default.market.data_source
    assert cfg.synthetic == default.synthetic


def test_dotted_keys_and_nested_tables_reach_their_section(tmp_path: Path) -> None:
    path = write_toml(tmp_path, """
        market.timeframe = "15m"
        synthetic = { seed = 7, n_candles = 100 }
    """)
    cfg = load_config(path)
    assert cfg.market.timeframe == "15m"
    assert (cfg.synthetic.seed, cfg.synthetic.n_candles) == (7, 100)


def test_explicit_path_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = write_toml(tmp_path, '[market]\ntimeframe = "1d"\n', "env.toml")
    explicit = write_toml(tmp_path, '[market]\ntimeframe = "5m"\n', "explicit.toml")
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(from_env))
    assert load_config(None).market.timeframe == "1d"
    assert load_config(explicit).market.timeframe == "5m"
    assert load_config(str(explicit)).market.timeframe == "5m"


def test_repository_file_is_used_when_nothing_else_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root_file = write_toml(tmp_path, '[market]\ntimeframe = "1m"\n', "rl_system.toml")
    monkeypatch.delenv("RL_SYSTEM_CONFIG")
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_FILE", root_file)
    assert config_path(None) == root_file
    assert load_config(None).market.timeframe == "1m"
    root_file.unlink()
    assert config_path(None) is None
    assert load_config(None) == Config()


def test_default_file_is_rl_system_toml_at_the_repository_root() -> None:
    assert config_module.DEFAULT_CONFIG_FILE == REPO_ROOT / "rl_system.toml"
    assert (REPO_ROOT / "core" / "config.py").is_file()


def test_missing_explicit_file_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(None)


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_config(tmp_path)  # a folder, not a file


# --- strict keys and types -------------------------------------------------------------------------------------


def assert_config_error(path: Path, *fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_config_error_is_fatal() -> None:
    assert issubclass(ConfigError, FatalError)


def test_unknown_section_names_key_and_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[markets]\ntimeframe = '1h'\n")
    message = assert_config_error(path, "`markets`")
    assert "market" in message.split("known keys")[1]  # the likely intended name is listed


def test_unknown_key_in_a_section_names_the_dotted_key(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[costs]\nfees = 0.1\n")
    assert_config_error(path, "`costs.fees`", "fee, slippage")


def test_wrong_type_names_key_file_and_expected_type(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[market]\ntimeframe = 60\n")
    assert_config_error(path, "`market.timeframe`", "str", "int")


def test_section_given_as_a_value_is_an_error(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "market = 3\n")
    assert_config_error(path, "`market`", "table")


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[costs]\nfee = 0\n[synthetic]\nstart_prices = [100, 2.5]\n")
    cfg = load_config(path)
    assert cfg.costs.fee == 0.0 and type(cfg.costs.fee) is float
    assert cfg.synthetic.start_prices == [100.0, 2.5]
    assert all(type(v) is float for v in cfg.synthetic.start_prices)


@pytest.mark.parametrize("body, key", [
    ("[synthetic]\nseed = true\n", "`synthetic.seed`"),        # bool is an int subclass in Python, not here
    ("[costs]\nfee = false\n", "`costs.fee`"),                # nor a float
    ("[synthetic]\nseed = 1.5\n", "`synthetic.seed`"),        # a float is not silently truncated
    ("[synthetic]\nseed = \"42\"\n", "`synthetic.seed`"),     # nor a string converted
])
def test_near_miss_scalar_types_are_rejected(tmp_path: Path, body: str, key: str) -> None:
    assert_config_error(write_toml(tmp_path, body), key)


@pytest.mark.parametrize("literal", ["nan", "inf", "-inf"])
def test_non_finite_floats_are_refused(tmp_path: Path, literal: str) -> None:
    # TOML has nan and inf literals; a NaN fee would turn every pnl downstream into NaN.
    assert_config_error(write_toml(tmp_path, f"[costs]\nslippage = {literal}\n"), "`costs.slippage`", "finite")
    assert_config_error(write_toml(tmp_path, f"[synthetic]\nstart_prices = [1.0, {literal}]\n"),
                        "`synthetic.start_prices[1]`")


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
def test_foundation_sections_check_their_values(tmp_path: Path, body: str, fragment: str) -> None:
    assert_config_error(write_toml(tmp_path, body), fragment)


def test_accepted_values_of_checked_keys(tmp_path: Path) -> None:
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


def test_list_elements_are_typed_one_by_one(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[market]\nsymbols = ["BTC/USDT", 3]\n')
    assert_config_error(path, "`market.symbols[1]`", "str")
    path = write_toml(tmp_path, '[synthetic]\nstart_prices = [1.0, "2"]\n')
    assert_config_error(path, "`synthetic.start_prices[1]`", "float")


def test_scalar_where_a_list_is_expected_is_an_error(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[market]\nsymbols = "BTC/USDT"\n')
    assert_config_error(path, "`market.symbols`", "list")


def test_mapping_values_are_typed(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[market]\ncsv_paths = { "BTC/USDT" = 3 }\n')
    assert_config_error(path, "`market.csv_paths.BTC/USDT`", "str")


def test_invalid_toml_syntax_names_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[market\ntimeframe = \n")
    assert_config_error(path, "not valid TOML")


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[market]\ntimeframe = "h\xe9"\n'.encode("latin-1"))
    assert_config_error(path)


def test_config_from_dict_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"my-source: unknown key `market\.nope`"):
        config_from_dict({"market": {"nope": 1}}, source="my-source")


# --- RL_SYSTEM_HOME ------------------------------------------------------------------------------------------------


def test_rl_system_home_moves_state_and_runtime(cfg: Config, rl_home: Path) -> None:
    assert cfg.home == rl_home.resolve()
    assert cfg.state_dir == rl_home.resolve() / "state"
    assert cfg.runtime_dir == rl_home.resolve() / "runtime"


def test_home_falls_back_to_config_then_repository(
    tmp_path: Path, rl_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere"
    cfg = config_from_dict({"paths": {"home": str(other)}})
    assert cfg.state_dir == rl_home.resolve() / "state"  # the environment wins over the file
    monkeypatch.delenv("RL_SYSTEM_HOME")
    assert cfg.state_dir == other.resolve() / "state"
    assert Config().runtime_dir == REPO_ROOT / "runtime"


# --- every field documented ----------------------------------------------------------------------------------------


def is_dataclass_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "dataclass") or \
        (isinstance(target, ast.Attribute) and target.attr == "dataclass")


def is_frozen(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and any(
        kw.arg == "frozen" and isinstance(kw.value, ast.Constant) and kw.value.value is True for kw in node.keywords
    )


def dataclass_nodes(tree: ast.Module) -> list[ast.ClassDef]:
    return [n for n in tree.body if isinstance(n, ast.ClassDef) and any(map(is_dataclass_decorator, n.decorator_list))]


def undocumented_fields(source: str) -> list[str]:
    """``Class.field`` for every dataclass field not followed by a string literal.

    The aggregate ``Config`` is exempt for its section fields: each section is a dataclass of this module whose
    own fields are checked here, which is where the documentation lives.
    """
    tree = ast.parse(source)
    classes = dataclass_nodes(tree)
    section_names = {c.name for c in classes}
    missing = []
    for cls in classes:
        body = cls.body
        for i, stmt in enumerate(body):
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            if cls.name == "Config" and isinstance(stmt.annotation, ast.Name) and stmt.annotation.id in section_names:
                continue
            following = body[i + 1] if i + 1 < len(body) else None
            documented = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant) \
                and isinstance(following.value.value, str) and following.value.value.strip() != ""
            if not documented:
                missing.append(f"{cls.name}.{stmt.target.id}")
    return missing


CONFIG_SOURCE = Path(config_module.__file__).read_text(encoding="utf-8")


def test_every_config_field_has_a_docstring() -> None:
    assert undocumented_fields(CONFIG_SOURCE) == [], \
        "add a string literal under each of these fields in core/config.py"


def test_every_config_dataclass_is_declared_frozen() -> None:
    classes = dataclass_nodes(ast.parse(CONFIG_SOURCE))
    assert len(classes) >= 7
    not_frozen = [c.name for c in classes if not any(map(is_frozen, c.decorator_list))]
    assert not_frozen == []


def test_every_config_section_is_a_module_dataclass_checked_above() -> None:
    checked = {c.name for c in dataclass_nodes(ast.parse(CONFIG_SOURCE))}
    for section in dataclasses.fields(Config):
        assert type(getattr(Config(), section.name)).__name__ in checked, section.name


def test_docstring_checker_catches_a_missing_or_misplaced_docstring() -> None:
    source = textwrap.dedent('''
        @dataclass(frozen=True)
        class GoodConfig:
            """Class docstrings are not field docstrings."""

            a: int = 1
            """Documented."""


        @dataclass(frozen=True)
        class BadConfig:
            b: int = 1
            c: str = "x"
            """Belongs to c only."""
            d: float = 0.5
            e: float = 0.5
            ""


        @dataclass(frozen=True)
        class Config:
            good: GoodConfig = field(default_factory=GoodConfig)
            count: int = 3
    ''')
    assert undocumented_fields(source) == ["BadConfig.b", "BadConfig.d", "BadConfig.e", "Config.count"]


def test_section_range_checks_also_name_the_file(tmp_path: Path) -> None:
    # Sections may validate values in __post_init__; the loader adds the file to their message.
    if "strategies" not in {f.name for f in dataclasses.fields(Config)}:
        pytest.skip("no section with range checks")
    path = write_toml(tmp_path, "[strategies]\nsma_fast = 60\nsma_slow = 50\n")
    message = assert_config_error(path, "strategies.sma_fast")
    assert message.count(str(path)) == 1
