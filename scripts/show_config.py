"""Print the effective configuration as TOML, each key with its documentation as a comment.

    python scripts/show_config.py [--config PATH] [--section NAME]

The output is a valid ``rl_system.toml``: copy it, keep the keys you want to change, delete the rest.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import ast
import dataclasses
import inspect
import json
import sys
from typing import Any

from core.config import Config, load_config
from core.errors import ConfigError, ExitCode


def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of a dataclass, by field name."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def render_section(name: str, section: Any) -> list[str]:
    lines = [f"[{name}]"]
    docs = field_docs(type(section))
    nested = []
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            nested.append((f"{name}.{f.name}", value))
            continue
        if f.name in docs:
            lines.append(f"# {docs[f.name]}")
        lines.append(f"{f.name} = {toml_value(value)}")
    lines.append("")
    for sub_name, sub in nested:
        lines += render_section(sub_name, sub)
    return lines


def render(cfg: Config, only: str | None = None) -> str:
    out = []
    for f in dataclasses.fields(cfg):
        if only and f.name != only:
            continue
        out += render_section(f.name, getattr(cfg, f.name))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file (default: rl_system.toml)")
    parser.add_argument("--section", metavar="NAME", help="print only this section")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    names = [f.name for f in dataclasses.fields(cfg)]
    if args.section and args.section not in names:
        print(f"error: unknown section {args.section!r}; sections: {', '.join(names)}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    print(render(cfg, args.section))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
