"""fairgym served: every registered env as an OpenEnv environment (``fairgym serve``), its client, and a Gymnasium
proxy that drives a served env exactly as a local one.

The package sits one floor above ``fairgym.envs`` (it imports only ``envs`` and the root modules), so the runner,
the LLM agent and the trainers can drive a remote env without an upward import. It needs the ``serve`` extra
(``pip install fairgym[serve]``: ``openenv``, FastAPI, uvicorn, websockets); importing this package alone imports
none of them, the modules below do.

- ``fairgym.serve.models``: the wire types (``TextAction``, ``TextObservation``, ``EpisodeState``);
- ``fairgym.serve.environment``: ``FairgymEnvironment``, the OpenEnv ``Environment`` around one Gymnasium env;
- ``fairgym.serve.app``: ``ServeConfig``, ``create_app`` (OpenEnv's FastAPI app plus fairgym's routes and limits)
  and ``serve`` (uvicorn);
- ``fairgym.serve.client``: ``FairgymEnvClient`` (OpenEnv's ``EnvClient``); ``fairgym.serve.errors``: its errors;
- ``fairgym.serve.remote``: ``RemoteEnv``/``make_remote_env``, a ``gymnasium.Env`` backed by a served session;
- ``fairgym.serve.process``: ``server_process``, a ``fairgym serve`` child process (tests, benchmarks, scripts).
"""

from __future__ import annotations

__all__: list[str] = []
