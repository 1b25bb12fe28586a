"""Hyperparameter advice for the Q-learning agents, and the command that applies it.

    python scripts/tune_qlearning.py                                   # recommendations with their rationale
    python scripts/tune_qlearning.py --apply --meta-alpha 0.015 --meta-epsilon 0.08
    python scripts/tune_qlearning.py --apply --sizing-gamma 0.98 --sizing-epsilon 0.1
    python scripts/tune_qlearning.py --history                         # the values applied so far
    python scripts/tune_qlearning.py --backups                         # the Q-table backups there are
    python scripts/tune_qlearning.py --backup                          # back the Q-tables up now
    python scripts/tune_qlearning.py --restore weekly_2024-01-07       # restore one (the current ones backed up first)

Recommendations start from each agent's learning stage (by its updates, i.e. trades learned) and the
guidelines below: a value outside its stage's range is moved to the nearest end of it.

=========  ===============  ===============  ===============  ====================================================
parameter  early (< 100)    active           mature (> 1000)  purpose
=========  ===============  ===============  ===============  ====================================================
alpha      0.01-0.02        0.01-0.015       0.001-0.005      learning rate: how fast Q-values move
gamma      0.95-0.99        0.98-0.99        0.99-0.999       discount: long-term versus short-term rewards
epsilon    0.2-0.3          0.1-0.2          0.01-0.05        exploration: random versus greedy actions
=========  ===============  ===============  ===============  ====================================================

Then the tuning tips, from the agent's own statistics (a later tip wins on the same parameter):

- high variance: Q-values spread over more than 20 times the standard deviation of the rewards (bootstrapping
  amplifies noise) -> gamma 0.95 and alpha at most 0.005;
- not learning: 100 updates or more yet the Q-values spread over less than 5 % of the reward deviation ->
  alpha 0.02;
- stuck in a local optimum: from 20 states on, one greedy action in 90 % of them or more -> epsilon 0.2;
- mature but unstable: over 1000 updates and the running mean absolute TD error above the reward deviation ->
  alpha 0.005 and epsilon 0.01.

``--apply`` writes the given values into the agents' files under their lock (the learning daemon picks them up at
its next pass): alpha and gamma are kept as overrides of the config, epsilon replaces the current one (it keeps
decaying from there); the old values go to the file's ``tuning_history``. Ranges: alpha in (0, 1], gamma in
[0, 1), epsilon in [``qlearning.epsilon_min``, 1] (below the floor the next decay would raise it back, so it
is neither recommended nor accepted); anything else is refused before any file is touched. ``--restore`` puts a
backup's tables back (the Q-learning daemon backs them up weekly, ``qlearning.backup_cron``), after backing up the
current ones. Exit codes: 0 done, 1 cannot write, 2 bad input (arguments, config, an unreadable agent file, an
unknown backup).
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from ai.tabular.agent import TUNABLE, learning_stage, validate_hyperparameter  # noqa: F401  (interface)
from ai.tabular.backups import backup_now, restore_backup
from ai.tabular.store import agents_locked, load_agent, save_agent_file
from ai.tabular.tuning import (  # the advice itself, shared with the dashboard
    GUIDELINES,
    Recommendation,
    recommend,  # noqa: F401  (part of this command's interface)
    recommendations_for,
)
from core.cli import add_config_argument, load_command_config
from core.config import Config
from core.contracts.qtables import AGENT_NAMES, agent_dir, agent_path, backup_root, list_backups
from core.errors import ExitCode, FatalError

RULE = "=" * 80
LINE = "-" * 80
TITLES = {"meta": "📊 META STRATEGY AGENT", "sizing": "📈 POSITION SIZING AGENT"}
SYMBOLS = {"alpha": "Alpha (α)", "gamma": "Gamma (γ)", "epsilon": "Epsilon (ε)"}


def apply_command(recommendations: list[Recommendation]) -> str | None:
    """The command that applies every recommended change, or None when there is none."""
    flags = [f"--{r.agent}-{p} {v:g}" for r in recommendations for p, v in r.changes.items()]
    return "python scripts/tune_qlearning.py --apply " + " ".join(flags) if flags else None


def render_recommendations(recommendations: list[Recommendation]) -> str:
    """The recommendations as text, in the layout of the original operations guide, with the apply command."""
    out = [RULE, "Q-LEARNING HYPERPARAMETER RECOMMENDATIONS", RULE, ""]
    for rec in recommendations:
        out += [TITLES[rec.agent], LINE,
                f"  Stage: {rec.stage}  (current: alpha {rec.current['alpha']:g}, gamma {rec.current['gamma']:g}, "
                f"epsilon {rec.current['epsilon']:.4g})"]
        if not rec.changes:
            out += ["  ✅ Current hyperparameters are optimal", ""]
            continue
        out.append("  Recommended Changes:")
        out += [f"    {SYMBOLS[p] + ':':<14}{v:.4f}" for p, v in rec.changes.items()]
        out += ["", "  Rationale:", *(f"    • {line}" for line in rec.rationale), ""]
    command = apply_command(recommendations)
    if command:
        out += ["🔧 TO APPLY RECOMMENDATIONS", LINE, "  Run the following command:", "", f"  {command}"]
    else:
        out += ["✅ Nothing to change."]
    return "\n".join(out) + "\n"



# ------------------------------------------------------------------------------------------- apply


def requested_changes(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """``{agent: {parameter: value}}`` from the ``--<agent>-<parameter>`` flags given."""
    changes: dict[str, dict[str, float]] = {}
    for name in AGENT_NAMES:
        for param in TUNABLE:
            value = getattr(args, f"{name}_{param}")
            if value is not None:
                changes.setdefault(name, {})[param] = value
    return changes


def validate_changes(changes: Mapping[str, Mapping[str, float]], epsilon_min: float = 0.0) -> str | None:
    """The first invalid value as a message naming its flag, or None.

    Beyond the ranges, an epsilon below ``epsilon_min`` is refused: the next decay would raise it to the floor,
    so the value asked for would not hold past the first trade."""
    for name, params in changes.items():
        for param, value in params.items():
            problem = validate_hyperparameter(param, value)
            if problem:
                return f"--{name}-{param} {value:g}: {problem}"
            if param == "epsilon" and value < epsilon_min:
                return (f"--{name}-{param} {value:g}: below the floor qlearning.epsilon_min = {epsilon_min:g}, "
                        f"which the next decay would restore; give at least {epsilon_min:g} or lower "
                        "qlearning.epsilon_min in the config")
    return None


def guidelines_table() -> str:
    """The guidelines table (stage ranges per parameter), as the recommendations use it."""
    purposes = {"alpha": "learning rate: how fast Q-values move",
                "gamma": "discount: long-term versus short-term rewards",
                "epsilon": "exploration: random versus greedy actions"}
    lines = [f"{'parameter':<10}{'early (<100)':<14}{'active':<14}{'mature (>1000)':<16}purpose"]
    for param in TUNABLE:
        ranges = [f"{GUIDELINES[stage][param][0]:g}-{GUIDELINES[stage][param][1]:g}" for stage in GUIDELINES]
        lines.append(f"{param:<10}{ranges[0]:<14}{ranges[1]:<14}{ranges[2]:<16}{purposes[param]}")
    return "\n".join(lines)


def apply_changes(cfg: Config, changes: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Write the changes into the agents' files (under their locks); returns one line per change."""
    lines = []
    with agents_locked(cfg, list(changes)):
        for name, params in changes.items():
            agent = load_agent(cfg, name)
            record = agent.apply_tuning(params, source="tune_qlearning")
            save_agent_file(agent, agent_path(cfg, name))
            for param, value in params.items():
                lines.append(f"  {name}: {param} {record['old'][param]:.6g} -> {value:.6g}")
    return lines


def render_history(cfg: Config) -> str:
    """Every change applied so far, per agent, oldest first (from each agent file's ``tuning_history``)."""
    out = [RULE, "Q-LEARNING TUNING HISTORY", RULE]
    for name in AGENT_NAMES:
        records = load_agent(cfg, name).tuning_history
        out += ["", TITLES[name], LINE]
        if not records:
            out.append("  No tuning applied yet.")
        for rec in records:
            old, new = rec.get("old", {}), rec.get("new", {})
            changes = ", ".join(f"{p} {_fmt(old.get(p))} -> {_fmt(v)}" for p, v in new.items())
            out.append(f"  {rec.get('applied_at', '?')}  {changes}  ({rec.get('source', '?')})")
    return "\n".join(out) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else "?"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tune_qlearning.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Recommend alpha, gamma and epsilon for the Q-learning agents from their learning statistics "
                    "(with the rationale and the command to apply them), or --apply given values.",
        epilog="Guidelines by learning stage (updates = trades learned):\n\n" + guidelines_table()
               + "\n\nRanges: alpha in (0, 1], gamma in [0, 1), epsilon in [qlearning.epsilon_min, 1]. "
                 "Applied values are kept\nwith the agent, the old ones in its tuning_history. "
                 "Exit codes: 0 done, 2 bad input.")
    parser.add_argument("--apply", action="store_true", help="write the --meta-*/--sizing-* values to the agents")
    parser.add_argument("--history", action="store_true", help="print the values applied so far, with the old ones")
    for name in AGENT_NAMES:
        for param in TUNABLE:
            parser.add_argument(f"--{name}-{param}", type=float, metavar="X",
                                help=f"with --apply: new {param} of the {name} agent")
    backups = parser.add_mutually_exclusive_group()
    backups.add_argument("--backups", action="store_true",
                         help="list the Q-table backups (state/qlearning/backups/), oldest first")
    backups.add_argument("--backup", action="store_true", help="back the Q-tables up now (manual_<time>)")
    backups.add_argument("--restore", metavar="NAME",
                         help="replace the Q-tables with backup NAME (from --backups); the current ones are backed "
                              "up first as pre_restore_<time>")
    add_config_argument(parser)
    return parser


def backup_command(cfg: Config, args: argparse.Namespace) -> int:
    """``--backups``, ``--backup`` or ``--restore NAME``: prints what was done."""
    if args.backup:
        made = backup_now(cfg)
        print(f"backed up {', '.join(made.agents)} to {made.path}" if made else
              f"no Q-table in {agent_dir(cfg)} yet: nothing to back up")
        return ExitCode.OK
    if args.restore:
        result = restore_backup(cfg, args.restore)
        print(f"restored {', '.join(result.agents)} from {result.restored_from.path}")
        if result.previous is not None:
            print(f"the tables replaced are in {result.previous.path}")
        if result.kept:
            print(f"not in the backup, left as they were: {', '.join(result.kept)}")
        return ExitCode.OK
    found = list_backups(cfg)
    if not found:
        print(f"no Q-table backup in {backup_root(cfg)} yet")
    for backup in found:
        print(f"{backup.name:<36}{backup.kind:<13}{backup.created_at:%Y-%m-%d %H:%M:%S} UTC  "
              f"{', '.join(backup.agents)}")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    changes = requested_changes(args)
    if changes and not args.apply:
        parser.error("values were given without --apply; add --apply to write them")
    if args.history and (args.apply or changes):
        parser.error("--history only prints; run --apply separately")
    backup_mode = args.backups or args.backup or args.restore is not None
    if backup_mode and (args.apply or changes or args.history):
        parser.error("--backups, --backup and --restore run on their own; run --apply or --history separately")
    if args.apply and not changes:
        parser.error("nothing to apply; give at least one of --meta-alpha, --meta-gamma, --meta-epsilon, "
                     "--sizing-alpha, --sizing-gamma, --sizing-epsilon")
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    cfg = load_command_config("tune_qlearning", args.config)
    if cfg is None:
        return ExitCode.BAD_INPUT
    try:
        problem = validate_changes(changes, cfg.qlearning.epsilon_min)
        if problem:
            print(f"tune_qlearning: error: {problem}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        if backup_mode:
            return backup_command(cfg, args)
        if args.apply:
            print("Applied:\n" + "\n".join(apply_changes(cfg, changes)))
            return ExitCode.OK
        if args.history:
            sys.stdout.write(render_history(cfg))
            return ExitCode.OK
        sys.stdout.write(render_recommendations(recommendations_for(cfg)))
    except FatalError as exc:
        print(f"tune_qlearning: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except OSError as exc:
        print(f"tune_qlearning: error: {exc}; check that the state folder is writable", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
