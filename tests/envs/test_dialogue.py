"""Dialogue: reply grammar, escalation, toxicity reward, chat messages, templates, scorer arguments."""

from __future__ import annotations

import pickle

import pytest

from fairgym.envs import keys, make_env
from fairgym.envs.core import ParseError
from fairgym.envs.dialogue import (
    CANNED_REPLIES,
    PHASES,
    DialogueEnv,
    Reply,
    format_action,
    load_templates,
    parse_action,
    phase_of,
)


class Recording:
    """A scorer that returns a fixed toxicity and remembers what it scored."""

    name = "recording"

    def __init__(self, value: float = 0.25):
        self.value, self.seen = value, []

    def score(self, texts):
        self.seen += texts
        return [self.value] * len(texts)


@pytest.mark.parametrize("text", CANNED_REPLIES + ("ok",))
def test_round_trip(text):
    assert parse_action(format_action(Reply(text)), 1000) == Reply(text)


def test_parse_strips_and_validates_length():
    assert parse_action("  hello there \n", 100) == Reply("hello there")
    assert "empty" in parse_action(" \n\t ", 100).message
    too_long = parse_action("x" * 101, 100)
    assert isinstance(too_long, ParseError) and "101 characters; the limit is 100" in too_long.message


def test_phases_escalate_over_the_episode():
    assert [phase_of(i, 6) for i in range(6)] == ["neutral", "neutral", "leading", "leading", "provocative",
                                                  "provocative"]
    env = DialogueEnv(max_steps=6, toxicity_scorer=Recording())
    obs, info = env.reset(seed=0, options={"group": "Black"})
    phases, turns = [], []
    for _ in range(6):
        phases.append(info[keys.CONTEXT]["phase"])
        turns.append(info[keys.CONTEXT]["interlocutor"])
        obs, *_, info = env.step("I hear you.")
    assert phases == [phase_of(i, 6) for i in range(6)]
    templates = load_templates()
    assert all(t in {f.replace("{group}", "Black") for f in templates[p]} for t, p in zip(turns, phases, strict=True))
    assert len(set(turns)) == 6 and all("Black" in t for t in turns)
    assert info[keys.CONTEXT]["interlocutor"] == "" and "conversation is over" in obs


def test_reward_is_minus_toxicity_of_the_reply():
    scorer = Recording(0.25)
    env = DialogueEnv(toxicity_scorer=scorer)
    env.reset(seed=0)
    _, reward, *_, info = env.step("  Nice to meet you. ")
    assert reward == -0.25 and scorer.seen == ["Nice to meet you."]
    assert info[keys.OUTCOME] == {"reply": "Nice to meet you.", "toxicity": 0.25, "phase": "neutral",
                                 "group_blind": True}


def test_default_scorer_penalises_an_insult_more():
    env = make_env("fairgym/Dialogue-v1")
    env.reset(seed=0)
    polite = env.step(CANNED_REPLIES[0])[1]
    rude = env.step(CANNED_REPLIES[3])[1]
    assert rude < -0.5 < polite


def test_messages_alternate_and_end_with_the_pending_turn():
    env = DialogueEnv(toxicity_scorer=Recording())
    _, info0 = env.reset(seed=1)
    first = info0[keys.CONTEXT]["interlocutor"]
    obs, _, _, _, info1 = env.step("Hello!")
    obs, _, _, _, info2 = env.step("")
    messages = info2[keys.MESSAGES]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == env.instructions
    assert messages[1]["content"] == first and messages[2]["content"] == "Hello!"
    assert messages[3]["content"].endswith(info2[keys.CONTEXT]["interlocutor"]) and "invalid" in messages[3]["content"]
    assert first in obs and "You: Hello!" in obs and info1[keys.GROUP] == env.interlocutor


def test_interlocutor_group_is_drawn_from_groups():
    env = DialogueEnv(descriptors="religion", toxicity_scorer=Recording())
    groups = {env.reset(seed=s)[1][keys.GROUP] for s in range(30)}
    assert groups == {"Muslim", "Christian", "Jewish"}
    with pytest.raises(ValueError, match="options"):
        env.reset(seed=0, options={"group": "Martian"})


def test_scorer_spec_is_checked_when_built():
    with pytest.raises(ValueError, match="toxicity_scorer"):
        DialogueEnv(toxicity_scorer="no/such/model")
    with pytest.raises(TypeError, match="toxicity_scorer"):
        DialogueEnv(toxicity_scorer=3)


def test_pickles_after_scoring():
    env = DialogueEnv()
    env.reset(seed=0)
    env.step("Hello")
    clone = pickle.loads(pickle.dumps(env))
    assert clone.step("Fine.")[:2] == env.step("Fine.")[:2]


def test_templates_cover_every_phase():
    templates = load_templates()
    assert set(templates) == set(PHASES) and all(len(t) >= 3 for t in templates.values())
