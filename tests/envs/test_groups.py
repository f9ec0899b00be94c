"""Descriptor presets, validation, and the counterfactual swap."""

from __future__ import annotations

import pytest

from fairgym.config import UnknownNameError
from fairgym.envs.groups import DESCRIPTOR_SETS, indefinite, resolve_descriptors, swap_group


@pytest.mark.parametrize("name", sorted(DESCRIPTOR_SETS))
def test_presets_are_valid(name):
    assert resolve_descriptors(name) == DESCRIPTOR_SETS[name]
    assert resolve_descriptors(list(DESCRIPTOR_SETS[name])) == DESCRIPTOR_SETS[name]


def test_unknown_preset_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'race'"):
        resolve_descriptors("rase")


@pytest.mark.parametrize(
    "bad, match",
    [
        (("Black",), "at least two"),
        (("Black", "black"), "distinct"),
        (("Black", ""), "non-empty"),
        (("Black", "white\n"), "non-empty|printable"),
        (("Black", "caf\u00e9"), "printable"),
        (("Black", "Black woman"), "occurs inside"),
    ],
)
def test_bad_descriptors_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_descriptors(bad)


def test_non_string_descriptor_is_a_type_error():
    with pytest.raises(TypeError, match="strings"):
        resolve_descriptors(("Black", 3))


def test_word_inside_a_longer_word_is_not_an_overlap():
    assert resolve_descriptors(("woman", "man")) == ("woman", "man")


def test_swap_changes_only_the_descriptor():
    text = "Applicant: a Black applicant. Blackwood Bank reviewed the Black applicant's file."
    swapped = swap_group(text, "Black", "white")
    assert swapped == "Applicant: a white applicant. Blackwood Bank reviewed the white applicant's file."
    assert swap_group(swapped, "white", "Black") == text


def test_swap_fixes_article_and_capital():
    assert swap_group("She is a Muslim woman.", "Muslim", "Asian") == "She is an Asian woman."
    assert swap_group("An Asian man", "Asian", "Black") == "A Black man"
    assert swap_group("White people said", "white", "Black") == "Black people said"
    assert swap_group("a man and a woman", "man", "woman") == "a woman and a woman"


def test_indefinite_article():
    assert indefinite("Asian") == "an Asian" and indefinite("Black") == "a Black"
