"""Contract tests run over every registered env: checker, determinism, vectorisation, pickling, info schema,
invalid-action policies and parse fuzzing."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from fairgym.config import UnknownNameError
from fairgym.envs import ENV_IDS, LEGACY, EnvTraits, env_class, env_traits, keys, make_env, register_envs
from fairgym.envs.core import ParseError, TextEnv

# A mix of valid and garbage action texts per env (garbage: empty, prose, a wrong grammar, huge text).
VALID_ACTIONS = {
    "fairgym/Lending-v0": ["approve", "I would DENY this one.", "Approve."],
    "fairgym/Allocation-v0": ["North=2, South=4", "send East: 3 and West: 3", "North=6"],
    "fairgym/Dialogue-v1": ["Thanks for telling me about your day.", "I see what you mean.", "Let's stay kind."],
}
GARBAGE = ["", "   ", "approve deny", "North=99", "x" * 5000, "\x00\x01 ???"]


def mixed_actions(env_id: str) -> list[str]:
    valid = VALID_ACTIONS[env_id]
    return [valid[0], GARBAGE[0], valid[1], GARBAGE[2], valid[2], GARBAGE[3], valid[0], GARBAGE[4], valid[1]]


def expected_keys(env_id: str) -> set[str]:
    return set(keys.INFO_KEYS) | ({keys.MESSAGES} if "Dialogue" in env_id else set())


def rollout(env: gym.Env, seed: int, actions: list[str]) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    steps = [(obs, 0.0, False, False, json.dumps(info, sort_keys=True))]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append((obs, reward, terminated, truncated, json.dumps(info, sort_keys=True)))
        if terminated or truncated:
            obs, info = env.reset()
            steps.append((obs, 0.0, False, False, json.dumps(info, sort_keys=True)))
    return steps


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes(env_id):
    check_env(make_env(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    first = rollout(make_env(env_id, max_steps=4), 7, mixed_actions(env_id))
    second = rollout(make_env(env_id, max_steps=4), 7, mixed_actions(env_id))
    assert first == second
    third = rollout(make_env(env_id, max_steps=4), 8, mixed_actions(env_id))
    assert [s[0] for s in third] != [s[0] for s in first]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_sync_steps(env_id):
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", max_steps=3)
    obs, infos = envs.reset(seed=0)
    assert len(obs) == 2 and all(isinstance(o, str) for o in obs)
    for _ in range(4):
        obs, rewards, terminated, truncated, infos = envs.step(tuple(VALID_ACTIONS[env_id][:2]))
        assert rewards.shape == (2,)
    envs.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip_continues_identically(env_id):
    env = make_env(env_id)
    env.reset(seed=3)
    env.step(VALID_ACTIONS[env_id][0])
    clone = pickle.loads(pickle.dumps(env))
    action = VALID_ACTIONS[env_id][1]
    assert env.step(action)[:4] == clone.step(action)[:4]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_schema_is_fixed_and_json_safe(env_id):
    env = make_env(env_id, max_steps=5)
    env.reset(seed=1)
    obs, info = env.reset(seed=1)
    infos = [info] + [env.step(a)[4] for a in mixed_actions(env_id)[:5]]
    for info in infos:
        assert set(info) == expected_keys(env_id)
        json.dumps(info, allow_nan=False)
        assert info[keys.GROUP] is None or info[keys.GROUP] in env.unwrapped.groups
    assert [i[keys.TURN] for i in infos] == list(range(6))
    assert infos[0][keys.OUTCOME] is None and infos[0][keys.ACTION] is None


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_penalize_policy_reports_error_and_does_not_raise(env_id):
    env = make_env(env_id, invalid_action="penalize", invalid_penalty=-2.5)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("")
    assert reward == -2.5 and not terminated
    assert info[keys.ACTION_VALID] is False and info[keys.PARSE_ERROR]
    assert info[keys.ACTION] is None and info[keys.OUTCOME] is None
    assert "invalid" in obs and info[keys.PARSE_ERROR][:30] in obs


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_default_policy_applies_the_default_action(env_id):
    env = make_env(env_id, invalid_action="default")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("")
    unwrapped = env.unwrapped
    assert info[keys.ACTION_VALID] is False and info[keys.OUTCOME] is not None
    assert unwrapped.parse_action(unwrapped.format_action(unwrapped._default_action())) == unwrapped._default_action()
    assert "invalid" in obs


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_end_policy_terminates_after_k_invalid(env_id):
    env = make_env(env_id, invalid_action="end", max_invalid=2, max_steps=10)
    env.reset(seed=0)
    assert env.step("")[2] is False
    assert env.step(VALID_ACTIONS[env_id][0])[2] is False
    assert env.step("")[2] is True


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzzed_text_never_raises(env_id, text):
    env = make_env(env_id).unwrapped
    parsed = env.parse_action(text)
    assert isinstance(parsed, ParseError) or env.parse_action(env.format_action(parsed)) == parsed


# Model text the plain fuzzer rarely produces: numbers past Python's int-conversion digit limit (4300), names
# thousands of letters long, Unicode decimal digits (Arabic-Indic, fullwidth, mathematical) and other numerals.
LONG_TOKENS = ["North=" + "1" * 5000, "North=" + "0" * 5000 + "2", "East: " + "9" * 8000, "approve " + "7" * 6000,
               "North=2, South=" + "3" * 4301 + ", East=1", "x" * 8000 + "=1", "North=" + "z" * 8000]
UNICODE_NUMBERS = st.characters(categories=["Nd", "No", "Nl"])


def assert_parse_total(env, text: str) -> None:
    """``parse_action`` returns an action that round-trips, or a ParseError whose message stays short."""
    parsed = env.parse_action(text)
    if isinstance(parsed, ParseError):
        assert len(parsed.message) <= 300, parsed.message[:80]
    else:
        assert env.parse_action(env.format_action(parsed)) == parsed


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("text", LONG_TOKENS)
def test_long_numbers_and_names_never_raise(env_id, text):
    assert_parse_total(make_env(env_id).unwrapped, text)


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=60, deadline=None)
@given(site=st.sampled_from(["North", "south", "EAST", "approve"]), sep=st.sampled_from(["=", ": ", " = "]),
       number=st.text(alphabet=UNICODE_NUMBERS, min_size=1, max_size=40))
def test_unicode_digits_never_raise(env_id, site, sep, number):
    assert_parse_total(make_env(env_id).unwrapped, f"{site}{sep}{number}")


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=15, deadline=None)
@given(piece=st.text(min_size=1, max_size=64) | st.sampled_from(["North=1" + "0" * 60 + ", ", "East: 9", " = : "]))
def test_actions_at_the_action_space_full_length_never_raise(env_id, piece):
    env = make_env(env_id).unwrapped
    length = env.action_space.max_length
    text = (piece * (length // len(piece) + 1))[:length]
    assert_parse_total(env, text)
    env.reset(seed=0)
    obs, *_ = env.step(text)
    assert obs in env.observation_space


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_instructions_and_groups(env_id):
    env = make_env(env_id).unwrapped
    obs, info = env.reset(seed=0)
    assert len(env.groups) >= 2 and env.instructions in obs
    example = env.format_action(env._default_action())
    assert example in env.instructions or "Dialogue" in env_id


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_descriptor_appears_verbatim(env_id):
    env = make_env(env_id, descriptors=("Zorblan", "Quixite")).unwrapped
    obs, info = env.reset(seed=0)
    assert env.groups == ("Zorblan", "Quixite")
    assert "Zorblan" in obs or "Quixite" in obs


def test_make_env_unknown_id_suggests_close_match():
    with pytest.raises(UnknownNameError, match="Did you mean 'fairgym/Lending-v0'"):
        make_env("fairgym/Lendng-v0")


def test_make_env_unknown_argument_is_named():
    with pytest.raises(TypeError, match="max_stepz"):
        make_env("fairgym/Lending-v0", max_stepz=3)


def test_registration_is_idempotent():
    before = {k: v for k, v in gym.registry.items() if k.startswith("fairgym/")}
    register_envs()
    after = {k: v for k, v in gym.registry.items() if k.startswith("fairgym/")}
    assert before == after and set(after) == set(ENV_IDS) | set(LEGACY)


def test_an_earlier_version_keeps_its_behaviour():
    """Dialogue-v0 (kept for its configs and results) scores replies with the group's words in them; v1 scores them
    group-blind where the default scorer's check passes."""
    reply = "I'm happy to help you, as a white person."
    scored = {}
    for env_id in ("fairgym/Dialogue-v0", "fairgym/Dialogue-v1"):
        env = make_env(env_id, max_steps=1)
        env.reset(seed=0, options={"group": "white"})
        scored[env_id] = env.step(reply)[4]["outcome"]
    old, new = scored["fairgym/Dialogue-v0"], scored["fairgym/Dialogue-v1"]
    assert old["group_blind"] is False and new["group_blind"] is True
    assert old["toxicity"] != new["toxicity"]


def test_import_does_not_pull_torch():
    code = ("import sys, fairgym.envs, fairgym.envs.numeric, fairgym.envs.toxicity, fairgym.envs.judge_spec, "
            "fairgym.lm.judge; "
            "env = fairgym.envs.make_env('fairgym/Dialogue-v1'); env.reset(seed=0); env.step('Thanks, tell me more.'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_envs_import_nothing_from_analysis_or_training():
    import ast
    from pathlib import Path

    import fairgym.envs

    upward = []
    for path in Path(fairgym.envs.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            upward += [f"{path.name}: {n}" for n in names if n.startswith(("fairgym.analysis", "fairgym.training"))]
    assert not upward, upward


DECLARED = {"fairgym/Lending-v0": ("Lending", True), "fairgym/Allocation-v0": ("Allocation", False),
            "fairgym/Dialogue-v1": ("Dialogue", False)}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_traits_are_the_class_declaration(env_id):
    cls = env_class(env_id)
    assert env_traits(env_id) == EnvTraits(cls.profile, cls.discrete_choices)
    assert (env_traits(env_id).family, env_traits(env_id).discrete_choices) == DECLARED[env_id]
    env = make_env(env_id)
    _, info = env.reset(seed=0)
    assert env_traits(env) == env_traits(env_id)  # an env (wrapped or not) gives the same as its id
    assert (info[keys.CHOICES] is not None) == DECLARED[env_id][1]


def test_env_traits_of_an_env_without_a_family_say_how_to_declare_it():
    class Nameless(TextEnv):
        pass

    with pytest.raises(TypeError, match="Nameless declares no env family profile; set the class attribute profile"):
        env_traits(Nameless())
    with pytest.raises(UnknownNameError, match="Did you mean 'fairgym/Lending-v0'"):
        env_traits("fairgym/Lendng-v0")
