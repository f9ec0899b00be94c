"""Info keys shared by every fairgym env, defined once and imported everywhere.

Every ``info`` returned by ``reset`` and ``step`` carries all of these keys. The *decision* keys describe the
decision now pending (what the agent must act on next); the *result* keys describe the step just taken
(``None``/``True`` right after ``reset``). The episode runner records, for step t, the decision keys from
before the action and the result keys from after it, so metrics are pure functions of the record.
"""

from __future__ import annotations

# Decision now pending.
TURN = "turn"  # index of the pending decision (= number of steps taken so far)
GROUP = "group"  # descriptor of the pending decision's group, or None when a decision spans all groups
CHOICES = "choices"  # list of valid action texts for a discrete decision, else None
CONTEXT = "context"  # JSON-safe observable features of the pending decision (e.g. credit score bin)
MESSAGES = "messages"  # chat messages (system, user, assistant, ...) from the agent's side, for dialogue envs

# Result of the step just taken.
ACTION_VALID = "action_valid"  # False when the action text did not parse
PARSE_ERROR = "parse_error"  # message explaining why the action text did not parse, else None
ACTION = "action"  # the parsed action as a JSON-safe dict (after the invalid-action policy), else None
OUTCOME = "outcome"  # JSON-safe dict of what happened, hidden state included (e.g. would_repay)

DECISION_KEYS = (TURN, GROUP, CHOICES, CONTEXT)
RESULT_KEYS = (ACTION_VALID, PARSE_ERROR, ACTION, OUTCOME)
INFO_KEYS = DECISION_KEYS + RESULT_KEYS
