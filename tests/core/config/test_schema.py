"""core.config.schema: the whole configuration, its defaults, RL_SYSTEM_HOME, and every field documented."""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import pytest

import core.config as config_package
from core.config import REPO_ROOT, Config, config_from_dict


def package_source() -> str:
    """The source of every module of the configuration package, as one module (future imports dropped)."""
    folder = Path(config_package.__file__).parent
    texts = [path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.py"))]
    return "\n".join(line for text in texts for line in text.splitlines()
                     if not line.startswith("from __future__ import"))


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


CONFIG_SOURCE = package_source()


def test_every_config_field_has_a_docstring() -> None:
    assert undocumented_fields(CONFIG_SOURCE) == [], \
        "add a string literal under each of these fields in core/config/"


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
