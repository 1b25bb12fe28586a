"""The dashboard daemon: serves the page of the suite (``dashboard.app``) until SIGTERM or Ctrl-C.

    python scripts/dashboard.py                       # http://127.0.0.1:8765/ ([dashboard] host, port)
    python scripts/dashboard.py --port 9000
    RL_DASHBOARD_TOKEN=... python scripts/dashboard.py --host 0.0.0.0

Like every daemon it writes ``runtime/heartbeats/dashboard.json`` (with its URL), ``runtime/pids/dashboard.pid``
and ``runtime/logs/dashboard.log``; it reads the suite's files and writes none of them.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading

import uvicorn

from core.cli import add_config_argument, load_command_config, with_changes
from core.config import Config
from core.daemon import DaemonContext, run_daemon_main
from core.errors import ExitCode
from dashboard.app import create_app
from dashboard.live import ChangeFeed
from dashboard.security import TOKEN_ENV, startup_token

DAEMON_NAME = "dashboard"
HEARTBEAT_S = 10.0
log = logging.getLogger(DAEMON_NAME)


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the daemon starts, so a taken port is a clear error at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def serve(cfg: Config, sock: socket.socket, token: str | None, ctx: DaemonContext) -> None:
    """Serve on ``sock`` in a thread and beat the heartbeat here until asked to stop."""
    feed = ChangeFeed(cfg.dashboard.refresh)
    feed.start(cfg, polling=cfg.bridge.polling)  # the same filesystem as the bridge watches
    app = create_app(cfg, token, feed)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard-http", daemon=True)
    thread.start()
    url = url_of(cfg.dashboard.host, sock.getsockname()[1])
    log.info("serving %s (token %s)", url, "required" if token else "not required: loopback")
    while True:
        ctx.beat(state="serving" if thread.is_alive() else "error", url=url, token_required=token is not None)
        if not thread.is_alive():
            log.error("the web server stopped; see the lines above")
            break
        if ctx.wait(HEARTBEAT_S):
            break
    feed.close()  # ends the open event streams, so the server's shutdown does not wait for them
    server.should_exit = True
    thread.join(timeout=10)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dashboard.py",
        description="Serve the web dashboard of the running suite: every daemon's health, the allocation loop, "
                    "the trader, weights over time and the performance report, both PPO agents and Q-learning, "
                    "updated live from the suite's files (read only).",
        epilog=f"Listens on [dashboard] host:port (default 127.0.0.1:8765). Any address other than loopback needs "
               f"${TOKEN_ENV} (16+ characters); requests then carry it (open /?token=... once, or send "
               "`Authorization: Bearer ...`). Exit codes: 0 stopped by SIGTERM/Ctrl-C, 1 cannot listen "
               "(port taken), 2 bad configuration or a missing token.")
    parser.add_argument("--host", help="address to listen on (default: dashboard.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default: dashboard.port, 8765)")
    add_config_argument(parser)
    return parser


def _with_token(cfg: Config, host: str | None, port: int | None) -> tuple[Config, str | None]:
    """The configuration with ``--host``/``--port`` and the token its address needs (ConfigError when it
    needs one and none is set)."""
    cfg = with_changes(cfg, "dashboard", host=host, port=port)
    return cfg, startup_token(cfg.dashboard.host, os.environ)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prepared = load_command_config("dashboard", args.config, lambda c: _with_token(c, args.host, args.port))
    if prepared is None:
        return ExitCode.BAD_INPUT
    cfg, token = prepared
    try:
        sock = bind(cfg.dashboard.host, cfg.dashboard.port)
    except OSError as exc:
        print(f"dashboard: error: cannot listen on {cfg.dashboard.host}:{cfg.dashboard.port} "
              f"({exc.strerror or exc}); choose another with --port or [dashboard] port", file=sys.stderr)
        return ExitCode.FAILURE
    print(f"dashboard: {url_of(cfg.dashboard.host, sock.getsockname()[1])}", flush=True)
    with sock:
        return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: serve(cfg, sock, token, ctx))


if __name__ == "__main__":
    sys.exit(main())
