"""FairgymEnvironment, the OpenEnv Environment of one session, in process: what reset and step return, what the
catalog allows, and that the settings a client sees hold no hidden episode state."""

from __future__ import annotations

import pytest

from fairgym.envs import make_env
from fairgym.serve.environment import EnvCatalog, FairgymEnvironment, SessionError
from fairgym.serve.models import TextAction

CATALOG = EnvCatalog(env_ids=("fairgym/Lending-v0", "fairgym/Dialogue-v1"), env_kwargs={"max_steps": 3})


def test_reset_and_step_return_what_the_gymnasium_env_does():
    session, local = FairgymEnvironment(CATALOG), make_env("fairgym/Lending-v0", max_steps=3)
    first = session.reset(seed=2)  # the catalog's first env, with the server's arguments
    assert (first.text, first.info) == local.reset(seed=2) and first.reward is None and not first.done
    assert first.start == local.unwrapped.start_state() and first.env.groups == ["Black", "white"]
    assert first.env.parameters["repay_probabilities"] == list(local.unwrapped.repay_probabilities)
    assert not {"cash", "would_repay", "applicant_bin"} & set(first.env.parameters)  # per-episode state stays hidden
    for text in ["approve", "garbage", "deny"]:
        result = session.step(TextAction(text=text))
        observation, reward, terminated, truncated, info = local.step(text)
        assert (result.text, result.reward, result.terminated, result.truncated, result.info) == (
            observation, reward, terminated, truncated, info)
    assert result.done and session.state.step_count == 3 and session.state.done
    with pytest.raises(SessionError, match="episode has ended: send a reset"):
        session.step(TextAction(text="approve"))


def test_the_catalog_decides_envs_and_arguments():
    session = FairgymEnvironment(CATALOG)
    with pytest.raises(SessionError, match="not started"):
        session.step(TextAction(text="approve"))
    assert session.reset(env_id="fairgym/Dialogue-v1", env_kwargs={"max_steps": 2}, seed=0).env.family == "Dialogue"
    assert session.state.env_kwargs == {"max_steps": 2}
    with pytest.raises(ValueError, match="Unknown served env 'fairgym/Allocation-v0'"):
        session.reset(env_id="fairgym/Allocation-v0")
    with pytest.raises(ValueError, match=r"\['openings', 'templates_path'\] name files or code on the server"):
        session.reset(env_id="fairgym/Dialogue-v1", env_kwargs={"templates_path": "/etc/passwd", "openings": "x"})
    with pytest.raises(TypeError, match="env_kwargs must be an object"):
        session.reset(env_kwargs=["max_steps", 3])
    with pytest.raises(ValueError, match=r"reset got unknown field\(s\) \['sed'\]"):
        session.reset(sed=1)
    fixed = FairgymEnvironment(EnvCatalog(env_ids=("fairgym/Lending-v0",), client_kwargs=False))
    with pytest.raises(ValueError, match="this server fixes the env arguments"):
        fixed.reset(env_kwargs={"max_steps": 5})
