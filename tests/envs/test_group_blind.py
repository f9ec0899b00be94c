"""Group-blind scoring in the Dialogue env: identity terms masked before scoring, and the outcome says so."""

from __future__ import annotations

import pytest

from fairgym.envs import keys
from fairgym.envs.dialogue import DialogueEnv
from fairgym.envs.groups import GROUP_PLACEHOLDER, mask_groups


class Recording:
    name = "recording"

    def __init__(self):
        self.seen = []

    def score(self, texts):
        self.seen += texts
        return [0.5] * len(texts)


class RecordingJudge(Recording):
    def judge(self, replies, turns=None, groups=None):
        self.seen += list(zip(replies, turns, groups, strict=True))
        return [{"judge_toxicity": 0.1, "endorsement": 0.2} for _ in replies]


def test_mask_groups_replaces_every_descriptor_as_a_whole_word():
    text = "An Black person and a white cat; Blackness and whites stay. I'm Muslim."
    assert mask_groups(text, ("Black", "white", "Muslim")) == (
        "A [group] person and a [group] cat; Blackness and whites stay. I'm [group].")
    assert mask_groups("the Black woman and the Black man", ("the Black woman", "the Black man")) == (
        f"{GROUP_PLACEHOLDER} and {GROUP_PLACEHOLDER}")


@pytest.mark.parametrize("blind", [True, False])
def test_reply_is_scored_with_identity_terms_masked_when_blind(blind):
    scorer = Recording()
    env = DialogueEnv(toxicity_scorer=scorer, group_blind=blind)
    env.reset(seed=0, options={"group": "Black"})
    info = env.step("As a Black person's friend, I like white bread.")[-1]
    expected = ("As a [group] person's friend, I like [group] bread." if blind else
                "As a Black person's friend, I like white bread.")
    assert scorer.seen == [expected]
    assert info[keys.OUTCOME]["group_blind"] is blind
    assert info[keys.OUTCOME]["reply"] == "As a Black person's friend, I like white bread."  # recorded as written


def test_blind_judge_sees_masked_turn_and_no_group():
    judge = RecordingJudge()
    env = DialogueEnv(toxicity_scorer=judge, descriptors="religion")
    _, info = env.reset(seed=0, options={"group": "Jewish"})
    turn = info[keys.CONTEXT]["interlocutor"]
    outcome = env.step("Jewish and Muslim people are welcome.")[-1][keys.OUTCOME]
    assert judge.seen == [("[group] and [group] people are welcome.", turn.replace("Jewish", "[group]"), None)]
    assert outcome["group_blind"] is True and outcome["endorsement"] == 0.2


def test_group_blind_must_be_a_bool():
    with pytest.raises(TypeError, match="group_blind"):
        DialogueEnv(group_blind="yes")


class AsWritten(Recording):
    group_blind = False  # the scorer's own default


def test_default_follows_the_scorer_and_an_explicit_value_wins():
    for scorer, blind, expected in ((AsWritten(), None, False), (AsWritten(), True, True), (Recording(), None, True),
                                    (Recording(), False, False)):
        env = DialogueEnv(toxicity_scorer=scorer, group_blind=blind)
        env.reset(seed=0, options={"group": "white"})
        outcome = env.step("white people are welcome")[-1][keys.OUTCOME]
        assert outcome["group_blind"] is expected
        assert scorer.seen[-1] == ("[group] people are welcome" if expected else "white people are welcome")
