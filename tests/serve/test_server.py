"""``fairgym serve`` against a real server process: concurrent sessions equal the in-process env, bad requests get
clear errors while other sessions go on, a killed server is one clear client error, idle sessions are reclaimed."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from served_env import get_json, server_process
from websockets.sync.client import connect

from fairgym.envs import ENV_IDS, make_env
from fairgym.serve.client import EnvServerError
from fairgym.serve.remote import make_remote_env

SESSIONS = 64
STEPS = 24  # per session; an episode that ends sooner is followed by another (seed + 1000)
ACTIONS = {  # a mix of valid and unparseable actions per env
    "fairgym/Lending-v0": ["approve", "deny", "I approve.", "maybe", "deny", "approve and deny"],
    "fairgym/Allocation-v0": ["North=2, South=4", "East=6", "all to West", "North=1, South=1, East=1, West=3"],
    "fairgym/Dialogue-v1": ["Thanks for asking.", "That is a fair point.", "", "I would rather not say that."],
}


def play(env, env_id: str, session: int, steps: int) -> list:
    """A trajectory of ``steps`` steps: every reset and step result, in order."""
    actions, out, episode = ACTIONS[env_id], [], 0
    out.append(("reset", *env.reset(seed=session), env.unwrapped.start_state()))
    for t in range(steps):
        result = env.step(actions[(session + t) % len(actions)])
        out.append(("step", *result))
        if result[2] or result[3]:
            episode += 1
            out.append(("reset", *env.reset(seed=session + 1000 * episode), env.unwrapped.start_state()))
    return out


def test_64_concurrent_sessions_equal_the_in_process_env(served):
    kwargs = {"max_steps": 12}
    envs = [(ENV_IDS[i % len(ENV_IDS)], make_remote_env(served, ENV_IDS[i % len(ENV_IDS)], **kwargs))
            for i in range(SESSIONS)]
    opened = threading.Barrier(SESSIONS + 1)
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def session(i: int) -> None:
        env_id, env = envs[i]
        try:
            env.reset(seed=i)  # open the session, then wait until all are open
            opened.wait(timeout=120)
            results[i] = play(env, env_id, i, STEPS)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            opened.abort()
        finally:
            env.close()

    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    opened.wait(timeout=120)
    assert get_json(f"{served}/fairgym/status")["active_sessions"] == SESSIONS  # all open at once
    for thread in threads:
        thread.join(timeout=300)
    wall = time.perf_counter() - started
    assert not errors, errors[:3]
    for i in range(SESSIONS):
        env_id = envs[i][0]
        local = play(make_env(env_id, **kwargs), env_id, i, STEPS)
        assert results[i] == local, f"session {i} ({env_id}) differs from the in-process env"
    steps = sum(sum(1 for r in rs if r[0] == "step") for rs in results.values())
    assert steps == SESSIONS * STEPS
    print(f"\n{SESSIONS} concurrent sessions x {STEPS} steps = {steps} steps in {wall:.2f} s wall "
          f"({steps / wall:.0f} steps/s), every trajectory equal to the in-process env's")
    deadline = time.monotonic() + 10
    while get_json(f"{served}/fairgym/status")["active_sessions"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get_json(f"{served}/fairgym/status")["active_sessions"] == 0  # closed sessions release their envs


def ws_request(socket, message: dict) -> dict:
    socket.send(json.dumps(message))
    return json.loads(socket.recv(timeout=30))


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_requests_get_clear_errors_while_other_sessions_go_on(served):
    env_id = "fairgym/Lending-v0"
    good, local = make_remote_env(served, env_id, max_steps=8), make_env(env_id, max_steps=8)
    assert good.reset(seed=5) == local.reset(seed=5)
    ws_url = served.replace("http", "ws") + "/ws"
    with connect(ws_url) as bad:
        assert ws_request(bad, {"type": "reset", "data": {"seed": 1}})["type"] == "observation"
        malformed = ws_request(bad, {"type": "step", "data": {"txt": "approve"}})
        assert malformed["type"] == "error" and malformed["data"]["code"] == "VALIDATION_ERROR"
        assert "a fairgym action is an object with one field, text" in malformed["data"]["errors"][0]["msg"]
        assert good.step("approve") == local.step("approve")
        oversized = ws_request(bad, {"type": "step", "data": {"text": "x" * 70_000}})
        assert oversized["type"] == "error" and oversized["data"]["code"] == "PAYLOAD_TOO_LARGE"
        assert "65536 bytes" in oversized["data"]["message"]
        unknown_env = ws_request(bad, {"type": "reset", "data": {"env_id": "fairgym/Lendin-v0"}})
        assert "Did you mean 'fairgym/Lending-v0'" in unknown_env["data"]["message"]
        locked = ws_request(bad, {"type": "reset", "data": {"env_id": "fairgym/Dialogue-v1",
                                                            "env_kwargs": {"toxicity_scorer": "os:system"}}})
        assert "set them when starting the server" in locked["data"]["message"]
        # the same socket still serves: its session stepped on
        assert ws_request(bad, {"type": "reset", "data": {"seed": 1}})["type"] == "observation"
        assert ws_request(bad, {"type": "step", "data": {"text": "deny"}})["type"] == "observation"
    with connect(ws_url + "?session_id=no-such-session") as stranger:
        reply = json.loads(stranger.recv(timeout=30))
        assert reply["type"] == "error" and "Unknown session_id: no-such-session" in reply["data"]["message"]
    status, reply = post(f"{served}/mcp", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                                                      "params": {"session_id": "no-such-session"}}).encode())
    assert "Unknown session_id: no-such-session" in reply["error"]["message"]
    status, reply = post(f"{served}/reset", b'{"seed": 1, "pad": "' + b"x" * 70_000 + b'"}')
    assert status == 413 and "larger than this server's limit of 65536 bytes" in reply["detail"]
    status, reply = post(f"{served}/step", json.dumps({"action": {"text": "approve"}}).encode())
    assert status == 409 and "send a reset" in reply["detail"]  # HTTP /step is stateless in OpenEnv
    for action in ["deny", "approve", "nonsense", "deny"]:  # the good session never noticed
        assert good.step(action) == local.step(action)
    good.close()


def test_a_killed_server_is_one_clear_client_error():
    with server_process() as (url, process):
        env = make_remote_env(url, "fairgym/Allocation-v0", max_steps=10)
        env.reset(seed=0)
        env.step("North=3, South=3")
        process.kill()
        process.wait()
        lost = (r"lost the session with the env server at http://127\.0\.0\.1:\d+ during step of "
                r"fairgym/Allocation-v0 \(episode seed 0, after 1 steps\)")
        with pytest.raises(EnvServerError, match=lost) as caught:
            env.step("North=3, South=3")
        assert caught.value.__cause__ is None and caught.value.__suppress_context__  # one error, not a chain
        env.close()  # closing a lost session is quiet
        with pytest.raises(EnvServerError, match="no fairgym env server answers"):
            make_remote_env(url, "fairgym/Allocation-v0")


def test_idle_sessions_are_reclaimed():
    with server_process("--session-timeout", "1") as (url, _):
        env = make_remote_env(url, "fairgym/Lending-v0")
        env.reset(seed=0)
        status, created = post(f"{url}/mcp", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create",
                                                         "params": {}}).encode())
        assert get_json(f"{url}/fairgym/status")["active_sessions"] == 2  # a WebSocket and an HTTP session
        deadline = time.monotonic() + 15  # OpenEnv checks HTTP sessions every 5 s
        while get_json(f"{url}/fairgym/status")["active_sessions"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get_json(f"{url}/fairgym/status")["active_sessions"] == 0
        with pytest.raises(EnvServerError, match="idle for more than 1 s"):
            env.step("approve")
        session_id = created["result"]["session_id"]
        status, reply = post(f"{url}/mcp", json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
                                                       "params": {"session_id": session_id}}).encode())
        assert f"Unknown session_id: {session_id}" in reply["error"]["message"]
        env.reset(seed=1)  # a fresh session after the reclaimed one
        assert get_json(f"{url}/fairgym/status")["active_sessions"] == 1
        env.close()
