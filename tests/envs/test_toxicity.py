"""Toxicity scorers: the offline default ranks insults above politeness; a local transformers model scores."""

from __future__ import annotations

import pickle

import pytest

from fairgym.config import UnknownNameError
from fairgym.envs.toxicity import ProfanityCheckScorer, ToxicityScorer, make_scorer, score_texts
from fairgym.lm.classifier import TransformersScorer, toxic_label

POLITE = "Thank you for sharing, I appreciate your point of view."
INSULT = "Shut up, you stupid idiot, you are a worthless piece of shit."


def test_profanity_scorer_ranks_insult_above_polite():
    scorer = make_scorer()
    assert isinstance(scorer, ProfanityCheckScorer) and isinstance(scorer, ToxicityScorer)
    polite, insult = score_texts(scorer, [POLITE, INSULT])
    assert insult > 0.9 > 0.2 > polite
    assert scorer.score([]) == []


def test_make_scorer_errors():
    with pytest.raises(UnknownNameError, match="profanity-check"):
        make_scorer("profanity_chek")
    with pytest.raises(TypeError, match="score"):
        make_scorer(42)


def test_make_scorer_passes_scorer_objects_through():
    class Constant:
        name = "constant"

        def score(self, texts):
            return [0.5] * len(texts)

    scorer = Constant()
    assert make_scorer(scorer) is scorer


def test_score_texts_rejects_out_of_range():
    class Bad:
        name = "bad"

        def score(self, texts):
            return [2.0] * len(texts)

    with pytest.raises(ValueError, match="one probability"):
        score_texts(Bad(), ["x"])


@pytest.mark.parametrize(
    "labels, expected",
    [({0: "non-toxic", 1: "toxic"}, "toxic"), ({0: "LABEL_0", 1: "LABEL_1"}, "LABEL_1"),
     ({0: "neutral", 1: "HATE", 2: "other"}, "HATE"), ({0: "toxic", 1: "severe_toxic", 2: "obscene"}, "toxic"),
     ({0: "not_offensive", 1: "offensive"}, "offensive")],
)
def test_toxic_label_inference(labels, expected):
    assert toxic_label(labels) == expected


def test_toxic_label_ambiguous_asks_for_label():
    with pytest.raises(ValueError, match="label="):
        toxic_label({0: "a", 1: "b", 2: "c"})


def test_transformers_scorer_missing_path_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TransformersScorer(tmp_path / "nope")


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """A 1-layer DistilBert sequence classifier with a word-level tokenizer, saved to a folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + sorted(set((POLITE + " " + INSULT).lower().split()))
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]",
                                        model_input_names=["input_ids", "attention_mask"])
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=len(words), dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                              max_position_embeddings=64, id2label={0: "non-toxic", 1: "toxic"},
                              label2id={"non-toxic": 0, "toxic": 1}, pad_token_id=0)
    path = tmp_path_factory.mktemp("tiny-toxic")
    DistilBertForSequenceClassification(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_transformers_scorer_scores_with_a_local_model(tiny_classifier):
    scorer = make_scorer(str(tiny_classifier))
    assert isinstance(scorer, TransformersScorer) and scorer.name == f"transformers:{tiny_classifier.name}"
    scores = scorer.score([POLITE, INSULT, POLITE])
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] == pytest.approx(scores[2]) and scores[0] != pytest.approx(scores[1])
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone._pipe is None and clone.score([INSULT]) == pytest.approx([scores[1]])


def test_transformers_scorer_matches_the_model_softmax(tiny_classifier):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier)
    with torch.no_grad():
        probs = model(**tokenizer([INSULT], return_tensors="pt")).logits.softmax(-1)
    assert TransformersScorer(tiny_classifier).score([INSULT]) == pytest.approx([probs[0, 1].item()], abs=1e-5)
