"""``FairgymEnvClient``: OpenEnv's ``EnvClient`` for a served fairgym env (one WebSocket session per client).

Use it as any OpenEnv client::

    from fairgym.serve.client import FairgymEnvClient
    from fairgym.serve.models import TextAction

    with FairgymEnvClient(base_url="http://127.0.0.1:8000").sync() as client:
        result = client.reset(seed=0, env_id="fairgym/Lending-v0", env_kwargs={"max_steps": 5})
        result = client.step(TextAction(text="approve"))
        print(result.observation.info["outcome"], result.reward, result.done)

One change from OpenEnv's client: once a session has been opened, a closed connection is an error
(``SessionClosedError``), never a silent reconnect. OpenEnv's client reconnects on the next call, which opens a
*new* session whose env has no episode; a fairgym episode cannot continue there, so the caller is told at once.
``fairgym.serve.remote.RemoteEnv`` (the Gymnasium view) turns every failure into one ``EnvServerError``.
"""

from __future__ import annotations

from typing import Any

from openenv.core import EnvClient
from openenv.core.client_types import StepResult
from websockets.protocol import State as SocketState

from fairgym.serve.errors import EnvServerError, SessionClosedError
from fairgym.serve.models import EpisodeState, TextAction, TextObservation

__all__ = ["EnvServerError", "FairgymEnvClient", "SessionClosedError"]


class FairgymEnvClient(EnvClient[TextAction, TextObservation, EpisodeState]):
    """OpenEnv client of ``fairgym serve`` (see the module docstring); arguments as ``EnvClient``'s."""

    _session_opened = False

    def _step_payload(self, action: TextAction) -> dict[str, Any]:
        return {"text": action.text}

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[TextObservation]:
        fields = dict(payload.get("observation") or {})
        observation = TextObservation(**{**fields, "reward": payload.get("reward"), "done": payload.get("done", False)})
        return StepResult(observation=observation, reward=payload.get("reward"), done=bool(payload.get("done")),
                          metadata=payload.get("metadata"))

    def _parse_state(self, payload: dict[str, Any]) -> EpisodeState:
        return EpisodeState(**payload)

    async def _ensure_connected(self) -> None:
        # OpenEnv calls this before every message; refuse to open a second session in place of a lost one.
        if self._session_opened:
            socket = self._ws
            if socket is None or socket.state is not SocketState.OPEN:
                code = getattr(socket, "close_code", None)
                reason = getattr(socket, "close_reason", None) or "connection lost"
                raise SessionClosedError(f"the session's connection closed (code {code}: {reason})")
        await super()._ensure_connected()
        self._session_opened = True
