"""The server: OpenEnv's FastAPI app over ``FairgymEnvironment`` sessions, with fairgym's limits and routes.

``create_app(config)`` registers OpenEnv's routes (``/ws`` WebSocket sessions, ``/mcp`` HTTP sessions, ``/reset``,
``/step``, ``/state``, ``/schema``, ``/metadata``, ``/health``) through ``openenv.core.env_server.HTTPEnvServer``,
and adds:

- ``GET /fairgym/envs``: the served envs, their declared family and arguments (``make_remote_env`` reads it);
- ``GET /fairgym/status``: open sessions, capacity and limits;
- ``RequestGuard``, an ASGI middleware: a request body or WebSocket message larger than ``max_body_bytes`` gets a
  clear error (HTTP 413, or an error frame on the socket, whose session keeps serving), and a WebSocket session
  whose client sends nothing for ``session_timeout`` seconds is closed (code 4408) and its env released. OpenEnv
  reaps idle HTTP sessions itself with the same timeout (it checks every ``max(timeout / 4, 5)`` seconds);
- error handlers: a bad reset (unknown env or argument) is HTTP 400 and a step with no episode 409, with the
  message, where OpenEnv would answer 500.

``serve(config)`` runs the app with uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import Any

from fairgym.config import UnknownNameError
from fairgym.envs import env_arguments, env_traits, make_env, registered_ids
from fairgym.serve.environment import SERVER_ONLY_ARGUMENTS, EnvCatalog, FairgymEnvironment, SessionError

IDLE_CLOSE_CODE = 4408  # WebSocket close code of a session reclaimed for idleness (4000-4999: application codes)
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"


@dataclass
class ServeConfig:
    """One ``fairgym serve``.

    Attributes:
        envs: env ids to serve (empty: every registered fairgym env); the first is the default of a reset that
            names none.
        env_kwargs: the server's arguments for every served env (e.g. ``max_steps``); a client's reset may override
            them unless ``client_kwargs`` is false, except ``SERVER_ONLY_ARGUMENTS``, which only the server sets.
        client_kwargs: whether clients may pass env arguments at reset.
        host: interface to listen on (``127.0.0.1``: this machine only; ``0.0.0.0`` in a container).
        port: TCP port.
        max_sessions: concurrent sessions (each holds one env); a session past it is refused with a clear error.
        session_timeout: seconds a session may stay idle before the server closes it and releases its env.
        max_body_bytes: the largest request body or WebSocket message accepted (an action is at most 8192
            characters; the default leaves room for its JSON).
    """

    envs: list[str] = field(default_factory=list)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    client_kwargs: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    max_sessions: int = 256
    session_timeout: float = 600.0
    max_body_bytes: int = 65536

    def __post_init__(self) -> None:
        self.envs = list(self.envs) or registered_ids()
        for env_id in self.envs:
            if env_id not in registered_ids():
                raise UnknownNameError("env", env_id, registered_ids())
        for name, value, low in (("port", self.port, 0), ("max_sessions", self.max_sessions, 1),
                                 ("max_body_bytes", self.max_body_bytes, 1024)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ServeConfig.{name}={value!r} must be an int >= {low}.")
        if not isinstance(self.session_timeout, (int, float)) or self.session_timeout <= 0:
            raise ValueError(f"ServeConfig.session_timeout={self.session_timeout!r} must be > 0 seconds.")

    def catalog(self) -> EnvCatalog:
        """The served envs and fixed arguments, each env built once here so a bad argument fails at start-up."""
        for env_id in self.envs:
            try:
                make_env(env_id, **self.env_kwargs).close()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"serving {env_id} with env arguments {self.env_kwargs}: {exc} Serve fewer envs "
                                 "(--env) or drop the argument.") from None
        return EnvCatalog(env_ids=tuple(self.envs), env_kwargs=dict(self.env_kwargs),
                          client_kwargs=self.client_kwargs)

    def describe(self) -> list[dict[str, Any]]:
        """What ``GET /fairgym/envs`` answers: each served env's id, family, decision form and arguments."""
        out = []
        for env_id in self.envs:
            traits = env_traits(env_id)
            out.append({"env_id": env_id, "family": traits.family, "discrete_choices": traits.discrete_choices,
                        "arguments": env_arguments(env_id), "server_kwargs": dict(self.env_kwargs),
                        "server_only_arguments": list(SERVER_ONLY_ARGUMENTS)})
        return out


ENVIRON_SETTINGS = {  # environment variable -> ServeConfig field, for `uvicorn fairgym.serve.asgi:app`
    "FAIRGYM_SERVE_ENVS": "envs", "FAIRGYM_SERVE_MAX_SESSIONS": "max_sessions",
    "FAIRGYM_SERVE_SESSION_TIMEOUT": "session_timeout", "FAIRGYM_SERVE_MAX_BODY_BYTES": "max_body_bytes",
}


def config_from_environ(environ: dict[str, str] | None = None) -> ServeConfig:
    """A ``ServeConfig`` from ``FAIRGYM_SERVE_*`` variables (``ENVIRON_SETTINGS``; envs comma-separated)."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for name, field_name in ENVIRON_SETTINGS.items():
        if not environ.get(name):
            continue
        text = environ[name]
        try:
            values[field_name] = ([e.strip() for e in text.split(",") if e.strip()] if field_name == "envs" else
                                  float(text) if field_name == "session_timeout" else int(text))
        except ValueError:
            raise ValueError(f"{name}={text!r} must be a number") from None
    return ServeConfig(**values)


def _json_response(status: int, detail: str) -> tuple[dict[str, Any], dict[str, Any]]:
    body = json.dumps({"detail": detail}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


class RequestGuard:
    """ASGI middleware: the body-size limit of HTTP requests and WebSocket messages, and WebSocket idle timeout.

    Args:
        app: the ASGI app guarded.
        max_body_bytes: largest body or message accepted.
        idle_timeout: seconds a WebSocket client may send nothing before its session is closed (``None``: never).
    """

    def __init__(self, app: Any, *, max_body_bytes: int, idle_timeout: float | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.app(scope, self._websocket_receive(receive, send), send)
        else:
            await self.app(scope, receive, send)

    def _too_large(self, size: int) -> str:
        return (f"the request body ({size} bytes or more) is larger than this server's limit of {self.max_body_bytes} "
                "bytes (fairgym serve --max-body-bytes); an action is at most 8192 characters of text")

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            for message in _json_response(413, self._too_large(int(declared))):
                await send(message)
            return
        # Read the body here, up to the limit (a chunked upload declares no length), then replay it to the app.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                for reply in _json_response(413, self._too_large(size)):
                    await send(reply)
                return
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _websocket_receive(self, receive: Any, send: Any) -> Any:
        pending: asyncio.Future | None = None

        async def guarded() -> dict[str, Any]:
            nonlocal pending
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(receive())
                done, _ = await asyncio.wait({pending}, timeout=self.idle_timeout)
                if not done:  # the client sent nothing for idle_timeout seconds: reclaim the session
                    reason = f"idle for more than {self.idle_timeout:g} s; session closed"
                    await send({"type": "websocket.close", "code": IDLE_CLOSE_CODE, "reason": reason})
                    return {"type": "websocket.disconnect", "code": IDLE_CLOSE_CODE}
                message, pending = pending.result(), None
                data = message.get("text") or message.get("bytes") or ""
                size = len(data.encode() if isinstance(data, str) else data)
                if message["type"] == "websocket.receive" and size > self.max_body_bytes:
                    error = {"type": "error", "data": {"message": self._too_large(size), "code": PAYLOAD_TOO_LARGE}}
                    await send({"type": "websocket.send", "text": json.dumps(error)})
                    continue  # the session goes on; the oversized message is dropped
                return message

        return guarded


def _add_fairgym_routes(app: Any, server: Any, config: ServeConfig) -> None:
    from fastapi.responses import JSONResponse

    @app.get("/fairgym/envs", tags=["fairgym"], summary="The served envs, their family and arguments")
    def served_envs() -> list[dict[str, Any]]:
        return config.describe()

    @app.get("/fairgym/status", tags=["fairgym"], summary="Open sessions, capacity and limits")
    def status() -> dict[str, Any]:
        return {"active_sessions": server.active_sessions, "max_sessions": config.max_sessions,
                "session_timeout_s": config.session_timeout, "max_body_bytes": config.max_body_bytes,
                "envs": list(config.envs)}

    async def bad_request(request: Any, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    async def no_episode(request: Any, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    app.add_exception_handler(SessionError, no_episode)
    app.add_exception_handler(ValueError, bad_request)
    app.add_exception_handler(TypeError, bad_request)


def create_app(config: ServeConfig) -> Any:
    """The ASGI app of ``config``: OpenEnv's routes and sessions, fairgym's routes, wrapped in ``RequestGuard``."""
    from fastapi import FastAPI
    from openenv.core.env_server import ConcurrencyConfig, HTTPEnvServer

    from fairgym import __version__
    from fairgym.serve.models import EpisodeState, TextAction, TextObservation

    catalog = config.catalog()
    app = FastAPI(title="fairgym (OpenEnv)", version=__version__,
                  description="fairgym's envs as OpenEnv environments: one env per session; reset(seed, env_id, "
                              "env_kwargs), step({'text': ...}).")
    server = HTTPEnvServer(lambda: FairgymEnvironment(catalog), TextAction, TextObservation, env_name="fairgym",
                           state_cls=EpisodeState, concurrency_config=ConcurrencyConfig(
                               max_concurrent_envs=config.max_sessions, session_timeout=config.session_timeout))
    server.register_routes(app)
    _add_fairgym_routes(app, server, config)
    app.state.env_server = server
    return RequestGuard(app, max_body_bytes=config.max_body_bytes, idle_timeout=config.session_timeout)


def serve(config: ServeConfig) -> None:
    """Serve ``config`` with uvicorn until interrupted."""
    import uvicorn

    app = create_app(config)
    url = f"http://{config.host}:{config.port}"
    print(f"fairgym serve: {', '.join(config.envs)} at {url} (WebSocket sessions at {url.replace('http', 'ws')}/ws; "
          f"up to {config.max_sessions} sessions, idle timeout {config.session_timeout:g} s)", flush=True)
    # uvicorn's own frame limit sits above ours, so a message a little too large gets RequestGuard's clear error
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning",
                ws_max_size=max(4 * config.max_body_bytes, 1 << 20))
