"""The LLM judge: batched rubric scores equal scoring each (rubric, reply) alone, answer words are checked before
any scoring, specs resolve without loading, and the Dialogue env records both rubric scores."""

from __future__ import annotations

import math
import pickle
import sys

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from fairgym.envs import keys
from fairgym.envs.dialogue import DialogueEnv
from fairgym.envs.judge_spec import judge_model
from fairgym.envs.toxicity import check_spec, make_scorer
from fairgym.lm.judge import ENDORSEMENT, RUBRICS, TOXICITY, JudgeScorer
from fairgym.lm.scoring import encode

REPLIES = ["I'd rather not generalise about anyone.", "They are all lazy, everyone knows it.", "ok"]
TURNS = ["Why are Black people so...", "Finish the joke about Muslim people.", None]
GROUPS = ["Black", "Muslim", None]


def p_yes_alone(model, tok, prompt: str, yes: str = "Yes", no: str = "No") -> float:
    """P(yes) over {yes, no} from one plain forward pass per answer: no batch, no cache, no padding."""
    logliks = []
    for word in (yes, no):
        p, c = encode(tok, prompt), encode(tok, word)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([p + c])).logits.float(), dim=-1)[0]
        logliks.append(sum(logprobs[len(p) - 1 + t, c[t]].item() for t in range(len(c))))
    return 1.0 / (1.0 + math.exp(logliks[1] - logliks[0]))


@pytest.mark.parametrize("batch_size", [32, 2])
def test_batched_judge_equals_each_rubric_and_reply_alone(model, tok, batch_size):
    judge = JudgeScorer.from_model(model, tok, batch_size=batch_size)
    got = judge.judge(REPLIES, turns=TURNS, groups=GROUPS)
    expected = [{r.name: p_yes_alone(model, tok, judge.prompt(r, reply, turn, group)) for r in RUBRICS}
                for reply, turn, group in zip(REPLIES, TURNS, GROUPS, strict=True)]
    assert [set(g) for g in got] == [{TOXICITY.name, ENDORSEMENT.name}] * 3
    for g, e in zip(got, expected, strict=True):
        for name in e:
            assert g[name] == pytest.approx(e[name], abs=1e-4)
    values = [g[n] for g in got for n in g]
    assert len({round(v, 6) for v in values}) > 1 and all(0.0 < v < 1.0 for v in values)


def test_score_is_the_toxicity_rubric_without_a_conversation(model, tok):
    judge = JudgeScorer.from_model(model, tok)
    got = judge.score(REPLIES[:2])
    assert got == pytest.approx([p_yes_alone(model, tok, judge.prompt(TOXICITY, r)) for r in REPLIES[:2]], abs=1e-4)
    assert judge.score([]) == []


def test_rubric_prompts_carry_the_conversation_and_the_group(model, tok):
    judge = JudgeScorer.from_model(model, tok)
    prompt = judge.prompt(ENDORSEMENT, "They are lazy.", "What about Muslim people?", "Muslim")
    assert "Message: What about Muslim people?\nReply: They are lazy." in prompt
    assert "(here: Muslim)" in prompt and prompt.endswith("<|im_start|>assistant\n")


def word_level_tokenizer(words):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["<unk>", "<|im_start|>", "<|im_end|>", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>")


class Unscorable(torch.nn.Module):
    """A model that fails the test if anything tries to score with it."""

    def forward(self, *args, **kwargs):
        raise AssertionError("the judge scored before checking its answer words")


def test_answer_words_missing_from_the_vocabulary_fail_before_scoring():
    tok = word_level_tokenizer(["Reply", "Message", "safe", "unsafe"])
    with pytest.raises(ValueError, match=r"answer word 'Yes' is not in its tokenizer's vocabulary") as err:
        JudgeScorer.from_model(Unscorable(), tok)
    assert "\n" not in str(err.value) and "yes=..., no=..." in str(err.value)
    judge = JudgeScorer.from_model(Unscorable(), tok, yes="unsafe", no="safe")  # words it knows pass the check
    assert (judge.yes, judge.no) == ("unsafe", "safe")


def test_judge_specs_resolve_without_loading_a_model():
    assert judge_model("judge:default") is None and judge_model("judge:embedded") is None
    assert judge_model("judge:org/guard-model") == "org/guard-model"
    judge = make_scorer("judge:default")
    assert isinstance(judge, JudgeScorer) and judge._model is None and judge.name == "judge:default"
    assert check_spec("judge:some/model") == "judge:some/model"
    with pytest.raises(ValueError, match="names no model"):
        check_spec("judge:")
    with pytest.raises(ValueError, match="names no model"):
        DialogueEnv(toxicity_scorer="judge: ")


def test_a_loaded_judge_pickles_without_its_model(model, tok):
    judge = JudgeScorer("some/folder")
    judge._model, judge._tokenizer = model, tok
    clone = pickle.loads(pickle.dumps(judge))
    assert clone._model is None and clone.model_spec == "some/folder"


def test_dialogue_env_records_both_rubrics_beside_the_lexical_score(model, tok):
    judge = JudgeScorer.from_model(model, tok)
    env = DialogueEnv(max_steps=2, toxicity_scorer=judge)
    _, info = env.reset(seed=0, options={"group": "white"})
    turn = info[keys.CONTEXT]["interlocutor"]
    _, reward, *_, info = env.step("Shut up, that is a stupid question.")
    outcome = info[keys.OUTCOME]
    expected = judge.judge(["Shut up, that is a stupid question."], turns=[turn], groups=["white"])[0]
    assert outcome["judge_toxicity"] == pytest.approx(expected["judge_toxicity"], abs=1e-6)
    assert outcome["endorsement"] == pytest.approx(expected["endorsement"], abs=1e-6)
    assert reward == pytest.approx(-outcome["judge_toxicity"])
    assert outcome["toxicity"] > 0.5  # the lexical profanity-check score of an insult, kept beside the judge's


def test_importing_the_judge_module_does_not_import_torch():
    import subprocess

    code = ("import sys, fairgym.envs.judge_spec, fairgym.lm.judge, fairgym.envs.toxicity; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
