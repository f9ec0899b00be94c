"""Group identities written in natural language, and the counterfactual swap of one descriptor for another.

A *descriptor* is the word (or short phrase) that names a group in an observation, e.g. ``"Black"`` or
``"Muslim"``. Envs write descriptors verbatim, so an LLM's priors about those words can act, and
``swap_group`` can build the counterfactual observation that differs only in the group.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from fairgym.config import UnknownNameError

# Presets: adjectives that read naturally in "a {d} applicant" and "{d} people". The first descriptor of each
# preset is the one that envs with a default disadvantage (Lending) start lower; pass an explicit tuple to
# change the order or the words.
DESCRIPTOR_SETS: dict[str, tuple[str, ...]] = {
    "race": ("Black", "white"),
    "religion": ("Muslim", "Christian", "Jewish"),
    "gender": ("female", "male"),
}
DEFAULT_DESCRIPTORS = "race"
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


def _pattern(descriptor: str) -> re.Pattern[str]:
    """``descriptor`` as a whole word or phrase (not inside a longer word), any case."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(descriptor)}(?![A-Za-z0-9])", re.IGNORECASE)


def _check_one(descriptor: object) -> str:
    if not isinstance(descriptor, str):
        raise TypeError(f"descriptors must be strings, got {descriptor!r} ({type(descriptor).__name__}).")
    if not descriptor.strip() or descriptor != descriptor.strip():
        raise ValueError(f"descriptor {descriptor!r} must be non-empty without surrounding spaces.")
    if not set(descriptor) <= _PRINTABLE:
        raise ValueError(f"descriptor {descriptor!r} must be printable ASCII on one line.")
    return descriptor


def resolve_descriptors(descriptors: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """A preset name (``"race"``, ``"religion"``, ``"gender"``) or an explicit tuple -> validated descriptors.

    Args:
        descriptors: a key of ``DESCRIPTOR_SETS``, a sequence of descriptors, or ``None`` for the default preset.

    Returns:
        The descriptors as a tuple, in order.

    Raises:
        UnknownNameError: an unknown preset name.
        ValueError: fewer than two, duplicates (any case), empty or non-printable descriptors, or one that
            occurs as a whole word inside another (``"Black"`` and ``"Black woman"``), which would make the
            group of a text ambiguous.
    """
    if descriptors is None:
        descriptors = DEFAULT_DESCRIPTORS
    if isinstance(descriptors, str):
        if descriptors not in DESCRIPTOR_SETS:
            raise UnknownNameError("descriptor set", descriptors, DESCRIPTOR_SETS)
        return DESCRIPTOR_SETS[descriptors]
    if not isinstance(descriptors, Sequence):
        raise TypeError(f"descriptors must be a preset name or a sequence of strings, got {descriptors!r}.")
    out = tuple(_check_one(d) for d in descriptors)
    if len(out) < 2:
        raise ValueError(f"descriptors={out!r} needs at least two groups.")
    if len({d.lower() for d in out}) != len(out):
        raise ValueError(f"descriptors={out!r} must be distinct (case-insensitive).")
    for a in out:
        for b in out:
            if a != b and _pattern(a).search(b):
                raise ValueError(f"descriptor {a!r} occurs inside {b!r}; pick descriptors that do not overlap.")
    return out


def swap_group(text: str, source: str, target: str) -> str:
    """The same text with every whole-word occurrence of ``source`` replaced by ``target``.

    Matching ignores case; a capitalised occurrence (sentence start) gets a capitalised target, and an
    indefinite article right before it is fixed (``"an Asian"`` -> ``"a Black"``). Nothing else changes.

    Args:
        text: an observation or prompt.
        source: the descriptor written in ``text``.
        target: the descriptor to put in its place.

    Returns:
        The counterfactual text.
    """
    if not source:
        raise ValueError("swap_group needs a non-empty source descriptor.")
    pattern = re.compile(rf"(?:(?<![A-Za-z0-9])([Aa]n?)(\s+))?{_pattern(source).pattern}", re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)[len(match.group(1) or "") + len(match.group(2) or ""):]
        word = target
        if found[:1].isupper() and not source[:1].isupper() and target[:1].islower():
            word = target[:1].upper() + target[1:]
        if match.group(1) is None:
            return word
        article = "an" if word[:1].lower() in "aeiou" else "a"
        if match.group(1)[0].isupper():
            article = article.capitalize()
        return article + match.group(2) + word

    return pattern.sub(replace, text)


def indefinite(descriptor: str) -> str:
    """``"a Black"`` / ``"an Asian"``: the descriptor with its indefinite article."""
    return ("an " if descriptor[:1].lower() in "aeiou" else "a ") + descriptor


GROUP_PLACEHOLDER = "[group]"  # what group-blind scoring writes where a descriptor stood


def mask_groups(text: str, descriptors: Sequence[str], placeholder: str = GROUP_PLACEHOLDER) -> str:
    """``text`` with every whole-word occurrence of each descriptor replaced by ``placeholder`` (``swap_group``'s
    matching: any case, the article before it fixed), longest descriptor first, so a scorer reading the result
    cannot react to which group it was about. Plurals and other forms (``"Muslims"``) are not descriptors and
    stay, as do descriptors used in another sense (``"white wine"``)."""
    for descriptor in sorted(descriptors, key=len, reverse=True):
        text = swap_group(text, descriptor, placeholder)
    return text
