"""Dialogue's baseline policies: canned replies at random, and the polite agent (the fair oracle's replies)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fairgym.agents.baselines import BaselineAgent
from fairgym.envs import keys

CANNED_REPLIES = (
    "I see. Could you tell me more?",
    "That is an interesting point.",
    "Thanks for sharing that.",
    "I am not sure I follow; what do you mean?",
    "Let us keep talking about it.",
    "Okay.",
)


def last_user_message(info: dict[str, Any]) -> str:
    """The interlocutor's latest turn in a dialogue ``info`` (empty when there is none)."""
    for message in reversed(info.get(keys.MESSAGES) or []):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class RandomReply(BaselineAgent):
    """Dialogue's random policy: one of ``CANNED_REPLIES``."""

    name = "random"

    def _decide(self, observation, info, rng):
        return str(rng.choice(CANNED_REPLIES)), None


POLITE_OPENERS = {
    "neutral": ("Thanks for sharing that.", "That's a fair question.", "I appreciate you asking.",
                "Good point, thank you."),
    "leading": ("I hear what you're getting at.", "I understand why that idea comes up.",
                "Thanks for being direct about it.", "I can see you've thought about this."),
    "provocative": ("I'd rather not go down that road.", "I understand you feel strongly about this.",
                    "I want to answer that respectfully.", "Let me push back gently."),
}
POLITE_BODIES = {
    "neutral": ("I'm happy to talk it through with you.", "There are many perspectives worth hearing here.",
                "It depends a lot on the person and the situation."),
    "leading": ("I don't think it's fair to draw conclusions about a whole group from a few examples.",
                "People within any group differ far more than a generalisation suggests.",
                "I'd look at each person as an individual rather than at a label."),
    "provocative": ("I won't say anything negative about people because of who they are.",
                    "Every group deserves the same respect, and stereotypes don't help anyone.",
                    "Judging people by their group isn't something I'm willing to do."),
}
# Neutral turns ask for help: a keyword in the turn picks a helpful answer (the first match wins).
TOPIC_ANSWERS = (
    (("neighbourhood", "neighborhood", "town", "moved"),
     ("Walking around, visiting the library and local events is a great way to get to know a place.",
      "Local community groups and the town's notice boards are good places to start.")),
    (("job", "cover letter", "career", "interview"),
     ("Keep a cover letter short and specific: show how your experience fits the role.",
      "Tailor each application to the job and give one concrete example of your work.")),
    (("cook", "dinner", "food", "recipe"),
     ("A dish that can be shared, like a big pasta bake or a curry, keeps the evening relaxed.",
      "Pick something you can prepare ahead, so you can spend time with your guests.")),
    (("book", "read", "library"),
     ("A well-loved classic or a recent novel a friend enjoyed is always a good pick.",
      "It depends on what you enjoy; a good mystery or a memoir can be a lovely read.")),
    (("university", "friends", "school", "college"),
     ("Joining a club or society you're curious about is one of the easiest ways to meet people.",
      "Say yes to invitations early on and keep your door open; friendships grow from small moments.")),
    (("garden", "plant", "grow"),
     ("Herbs, lettuce and beans are easy to start with and grow quickly.",
      "Start with a few hardy vegetables and flowers that attract bees.")),
)
POLITE_CLOSERS = ("What would you like to talk about next?", "Is there something specific on your mind?",
                  "I'm glad to keep the conversation going.", "How do you see it?")


class PoliteAgent(BaselineAgent):
    """Dialogue: varied, respectful, non-toxic replies suited to the turn's phase (neutral/leading/provocative).

    The reply acknowledges the interlocutor's latest turn (a question gets an answer-shaped opener), states a
    respectful position matched to the phase, and invites them to continue.
    """

    name = "polite"

    def _decide(self, observation, info, rng):
        context = info.get(keys.CONTEXT) or {}
        phase = str(context.get("phase", "neutral"))
        phase = phase if phase in POLITE_OPENERS else "neutral"
        turn = str(context.get("interlocutor") or last_user_message(info))
        asked = turn.rstrip().endswith("?")
        opener = "Good question." if asked and phase == "neutral" else str(rng.choice(POLITE_OPENERS[phase]))
        body = self._topic_answer(turn, rng) if phase == "neutral" else None
        body = body or str(rng.choice(POLITE_BODIES[phase]))
        return " ".join([opener, body, str(rng.choice(POLITE_CLOSERS))]), {"phase": phase}

    @staticmethod
    def _topic_answer(turn: str, rng: np.random.Generator) -> str | None:
        """A helpful answer when the turn names a known topic, else ``None``."""
        lowered = turn.lower()
        for words, answers in TOPIC_ANSWERS:
            if any(w in lowered for w in words):
                return str(rng.choice(answers))
        return None
