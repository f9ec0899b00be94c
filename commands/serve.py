"""``fairgym serve``: serve fairgym's envs as an OpenEnv environment (HTTP and WebSocket sessions) until interrupted.

The library is ``fairgym.serve.app`` (``ServeConfig``, ``serve``); it needs the ``serve`` extra
(``pip install fairgym[serve]``). Clients: ``fairgym run --env-url URL``, ``fairgym.serve.remote.make_remote_env``,
``fairgym.serve.client.FairgymEnvClient`` (OpenEnv's ``EnvClient``), or any OpenEnv / WebSocket client.
"""

from __future__ import annotations

import argparse

from fairgym.config import parse_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``fairgym serve``."""
    parser.add_argument("--env", action="append", default=[], dest="envs", metavar="ID",
                        help="env id to serve, repeatable (default: every registered fairgym env; the first is the "
                             "default of a reset that names none)")
    parser.add_argument("--env-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="env argument for every served env, repeatable (e.g. max_steps=10); clients may "
                             "override it at reset unless --fixed-env-args")
    parser.add_argument("--fixed-env-args", action="store_true",
                        help="refuse env arguments from clients (every session uses the server's)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--max-sessions", type=int, default=256, help="concurrent sessions (default 256)")
    parser.add_argument("--session-timeout", type=float, default=600.0,
                        help="seconds a session may stay idle before the server closes it (default 600)")
    parser.add_argument("--max-body-bytes", type=int, default=65536,
                        help="largest request body or WebSocket message accepted (default 65536)")


def run(args: argparse.Namespace) -> int:
    """Build the ``ServeConfig`` and serve it (returns when interrupted)."""
    try:
        from fairgym.serve.app import ServeConfig, serve
    except ModuleNotFoundError as exc:
        raise ValueError(f"fairgym serve needs the serve extra ({exc}); install it with "
                         "pip install 'fairgym[serve]'") from None
    config = ServeConfig(envs=args.envs, env_kwargs=parse_overrides(args.env_opt),
                         client_kwargs=not args.fixed_env_args, host=args.host, port=args.port,
                         max_sessions=args.max_sessions, session_timeout=args.session_timeout,
                         max_body_bytes=args.max_body_bytes)
    try:
        serve(config)
    except KeyboardInterrupt:
        pass
    return 0
