"""The LLM agent: a causal LM (the embedded SmolLM2 default, any transformers model, + optional PEFT adapter).

It decides for all live envs in one batched call, in one of two ways:

- ``decide="choice"``: the log-likelihood of each valid choice (``info["choices"]``) after the prompt, in one
  forward pass with the shared prefix's KV cache reused (``fairgym.lm.scoring``); the action is the most
  likely choice (``temperature=0``) or one sampled from the choice distribution. Every step records the choices,
  their log-likelihoods and their probabilities (the decision margins the analysis reads).
- ``decide="generate"``: sampled (or greedy) text from batched ``generate`` with left padding, stopped at the end
  of the assistant turn; the env parses it. Works on every env (Allocation grammar, Dialogue replies).

Randomness is per decision: with the ``DecisionKey`` the runner passes (episode seed, turn), choice sampling
draws from ``decision_rng(seed, key)`` and generation samples each row's tokens with its own torch generator
seeded from the same three numbers (``KeyedSampler``), so a decision depends neither on which other envs share
the batch nor on a resume, and two episodes that reach the same text draw differently. Without keys, each row
is seeded by the run seed, the call count and its position (``fairgym.agents.base.unkeyed_rng``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from fairgym.agents.base import AgentStats, DecisionKey, check_decision_keys, seed_words
from fairgym.agents.options import DECIDE_MODES
from fairgym.envs import keys
from fairgym.lm.generation import context_window, stop_ids
from fairgym.lm.models import load_model
from fairgym.lm.prompting import build_messages, render_prompt
from fairgym.lm.scoring import choice_distribution, encode, encode_choices, pick_choice, score_choice_ids


class LLMAgent:
    """A causal LM deciding for a batch of envs by choice scoring or by generation.

    Args:
        model: ``None`` for the embedded SmolLM2-135M-Instruct, else a hub id or local folder.
        adapter: optional PEFT adapter folder made for ``model``.
        decide: ``"choice"`` (needs ``info["choices"]``, e.g. Lending) or ``"generate"`` (every env).
        temperature: 0 for greedy; else the sampling temperature (of tokens, or of the choice distribution).
        top_p: nucleus sampling mass in (0, 1].
        max_new_tokens: generation length limit.
        seed: the seed all sampling derives from (``reset(seed)`` replaces it).
        device: e.g. ``"cpu"``, ``"cuda"``; default CUDA when available.
        dtype: default bfloat16 on CUDA, float32 on CPU.
        batch_size: envs per forward pass (larger batches are split).
    """

    name = "llm"

    def __init__(self, model: str | None = None, adapter: str | None = None, decide: str = "choice",
                 temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 48, seed: int = 0,
                 device: str | None = None, dtype: str | None = None, batch_size: int = 32) -> None:
        self._configure(decide=decide, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                        seed=seed, batch_size=batch_size)
        self._attach(*load_model(model, adapter, device=device, dtype=dtype))
        self.model_name = model

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, **kwargs: Any) -> LLMAgent:
        """An agent around an already-loaded ``(model, tokenizer)`` (e.g. a model being trained).

        Args:
            model: a causal LM (transformers or PEFT), on its device.
            tokenizer: its tokenizer (padding side and pad token are set here).
            **kwargs: ``decide``, ``temperature``, ``top_p``, ``max_new_tokens``, ``seed``, ``batch_size``.
        """
        agent = cls.__new__(cls)
        agent._configure(**kwargs)
        from fairgym.lm.models import prepare_tokenizer

        agent._attach(model, prepare_tokenizer(tokenizer))
        agent.model_name = getattr(getattr(model, "config", None), "_name_or_path", None)
        return agent

    # ---- set-up -------------------------------------------------------------------------------------------
    def _configure(self, decide: str = "choice", temperature: float = 0.0, top_p: float = 1.0,
                   max_new_tokens: int = 48, seed: int = 0, batch_size: int = 32) -> None:
        if decide not in DECIDE_MODES:
            raise ValueError(f"decide={decide!r} is not one of {DECIDE_MODES}")
        if not isinstance(temperature, (int, float)) or temperature < 0:
            raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
        if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        for field, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")
        self.decide, self.temperature, self.top_p = decide, float(temperature), float(top_p)
        self.max_new_tokens, self.batch_size, self.seed = max_new_tokens, batch_size, int(seed)
        self.stats = AgentStats(extra={"prompts_trimmed": 0, "turns_trimmed": 0, "prompt_tokens": 0,
                                       "new_tokens": 0})
        self.last_details: list[dict[str, Any] | None] = []
        self.env_id: str | None = None
        self._calls = 0

    def _attach(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.context_window = context_window(model)
        self.stop_ids = stop_ids(tokenizer, model)

    def reset(self, seed: int | None = None) -> None:
        """Set the seed all later sampling derives from, and restart the call count (of unkeyed calls)."""
        if seed is not None:
            self.seed = int(seed)
        self._calls = 0

    def calibrate(self, env: Any) -> None:
        """Remember the env id (for error messages); choice scoring on an env without choices is an error now,
        before any episode runs."""
        from fairgym.envs import env_traits

        spec = getattr(env, "spec", None)
        self.env_id = getattr(spec, "id", None) or type(getattr(env, "unwrapped", env)).__name__
        if self.decide == "choice" and not env_traits(env).discrete_choices:
            raise ValueError(f"decide='choice' needs info['{keys.CHOICES}'], which {self._env_name()} does not give "
                             "(its decisions are not a closed set); use decide='generate' there.")

    # ---- acting -------------------------------------------------------------------------------------------
    def act(self, observations: list[str], infos: list[dict[str, Any]],
            decision_keys: list[DecisionKey] | None = None) -> list[str]:
        """One action text per observation, same order; ``act([], [])`` is ``[]``.

        Args:
            observations: the live envs' observation texts.
            infos: their infos (same order).
            decision_keys: each observation's ``DecisionKey`` (episode seed, turn), as the runner passes them;
                sampling is seeded by them, or by the call order without them.
        """
        if len(observations) != len(infos):
            raise ValueError(f"act got {len(observations)} observations but {len(infos)} infos; pass one per env.")
        start = time.perf_counter()
        seeds = self._row_seeds(check_decision_keys(decision_keys, len(observations)))
        self._calls += 1
        actions: list[str] = []
        details: list[dict[str, Any] | None] = []
        for i in range(0, len(observations), self.batch_size):
            chunk = slice(i, i + self.batch_size)
            step = self._act_choice if self.decide == "choice" else self._act_generate
            a, d = step(observations[chunk], infos[chunk], seeds[chunk])
            actions += a
            details += d
        self.last_details = details
        self.stats.calls += 1
        self.stats.decisions += len(actions)
        self.stats.seconds += time.perf_counter() - start
        return actions

    def _row_seeds(self, batch_keys: list[DecisionKey | None]) -> list[list[int]]:
        """The seed words of each decision (``fairgym.agents.base.seed_words``)."""
        return [seed_words(self.seed, key, self._calls, i) for i, key in enumerate(batch_keys)]

    def _prompts(self, observations: list[str], infos: list[dict[str, Any]], reserve: int) -> list[str]:
        """Rendered prompts, trimmed to leave ``reserve`` tokens of the context window; trimming is counted."""
        prompts = []
        for obs, info in zip(observations, infos, strict=True):
            text, trimmed = render_prompt(self.tokenizer, build_messages(obs, info), self.context_window - reserve)
            self.stats.extra["prompts_trimmed"] += int(trimmed > 0)
            self.stats.extra["turns_trimmed"] += trimmed
            prompts.append(text)
        return prompts

    def _env_name(self) -> str:
        return self.env_id or "this env"

    def _act_choice(self, observations: list[str], infos: list[dict[str, Any]], seeds: list[list[int]]):
        choices: list[list[str]] = [info.get(keys.CHOICES) or [] for info in infos]
        if any(not c for c in choices):
            # The observation need not come from the env the agent was calibrated on: name what is known.
            source = f" (the agent was calibrated on {self.env_id}; this observation may come from another env)" \
                if self.env_id else ""
            raise ValueError(f"decide='choice' needs info['{keys.CHOICES}'], which this observation's info does not "
                             f"give{source}: its decisions are not a closed set; use decide='generate' there.")
        try:
            choice_ids = encode_choices(self.tokenizer, choices)
        except ValueError as exc:
            raise ValueError(f"{self._env_name()}: {exc}") from exc
        reserve = max(len(c) for row in choice_ids for c in row) + 1
        prompt_ids = [encode(self.tokenizer, p) for p in self._prompts(observations, infos, reserve)]
        n_tokens = sum(map(len, prompt_ids))
        self.stats.tokens += n_tokens
        self.stats.extra["prompt_tokens"] += n_tokens
        scores = score_choice_ids(self.model, prompt_ids, choice_ids, pad_id=self.tokenizer.pad_token_id or 0)
        actions, details = [], []
        for row, logprobs, words in zip(choices, scores, seeds, strict=True):
            index = pick_choice(logprobs, self.temperature, self.top_p, np.random.default_rng(words))
            actions.append(row[index])
            probs = choice_distribution(logprobs)
            details.append({"choices": list(row), "probs": [float(p) for p in probs],
                            "logprobs": [float(x) for x in logprobs]})
        return actions, details

    def _generate_kwargs(self, seeds: list[list[int]]) -> dict[str, Any]:
        """Greedy decoding; sampling is done by a ``KeyedSampler`` that leaves one token for greedy to take."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "eos_token_id": self.stop_ids,
                                  "pad_token_id": self.tokenizer.pad_token_id, "do_sample": False,
                                  "temperature": None, "top_p": None, "top_k": None}
        if self.temperature > 0:
            from transformers import LogitsProcessorList

            device = next(self.model.parameters()).device
            kwargs["logits_processor"] = LogitsProcessorList([KeyedSampler(seeds, self.temperature, self.top_p,
                                                                           device)])
        return kwargs

    def _act_generate(self, observations: list[str], infos: list[dict[str, Any]], seeds: list[list[int]]):
        prompts = self._prompts(observations, infos, self.max_new_tokens)
        batch = self.tokenizer(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
        batch = batch.to(next(self.model.parameters()).device)
        with torch.inference_mode():
            out = self.model.generate(**batch, **self._generate_kwargs(seeds))
        new = out[:, batch["input_ids"].shape[1]:].cpu()
        counts = [int(sum(t not in self.stop_ids and t != self.tokenizer.pad_token_id for t in row.tolist()))
                  for row in new]
        texts = [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        prompt_tokens = int(batch["attention_mask"].sum())
        self.stats.tokens += prompt_tokens + sum(counts)
        self.stats.extra["prompt_tokens"] += prompt_tokens
        self.stats.extra["new_tokens"] += sum(counts)
        return texts, [{"new_tokens": n} for n in counts]



class KeyedSampler:
    """A logits processor that samples each row's next token with that row's own generator.

    Temperature and nucleus (``top_p``) filtering are transformers' warpers; the sampled token is the only one
    left finite, so greedy decoding takes it. Each row's draws depend on its own seed words and its own logits
    only, never on the other rows of the batch.

    Args:
        seeds: one list of seed words per row (see ``LLMAgent._row_seeds``).
        temperature: > 0.
        top_p: nucleus mass in (0, 1].
        device: where the logits live (the generators are made there).
    """

    def __init__(self, seeds: list[list[int]], temperature: float, top_p: float, device: torch.device) -> None:
        from transformers import TemperatureLogitsWarper, TopPLogitsWarper

        self.warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1 else [])
        self.generators = []
        for words in seeds:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> 1))
            self.generators.append(generator)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        picks = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, -float("inf"))
        return out.scatter_(1, picks, 0.0)
