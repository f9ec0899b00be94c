"""Allocation: grammar, feedback dynamics on hand-built state, group sums."""

from __future__ import annotations

import pytest

from fairgym.envs import keys, make_env
from fairgym.envs.allocation import Allocation, AllocationEnv, even_split, format_action, parse_action
from fairgym.envs.core import ParseError

SITES = ("North", "South", "East", "West")


@pytest.mark.parametrize("units", [{"North": 2, "South": 4, "East": 0, "West": 0}, {s: 0 for s in SITES},
                                   {"North": 1, "South": 1, "East": 1, "West": 3}])
def test_round_trip(units):
    action = Allocation(units=units)
    assert parse_action(format_action(action), SITES, 6) == action


@pytest.mark.parametrize(
    "text, units",
    [("North=2, South=4", {"North": 2, "South": 4}), ("I'll send north: 3 and WEST = 3.", {"North": 3, "West": 3}),
     ("Answer: East=1", {"East": 1})],
)
def test_lenient_parse_fills_omitted_sites_with_zero(text, units):
    assert parse_action(text, SITES, 6) == Allocation(units={s: units.get(s, 0) for s in SITES})


@pytest.mark.parametrize(
    "text, problem",
    [("North=7", "budget is 6"), ("North=-1", "non-negative whole"), ("North=2.5", "whole number"),
     ("North=two", "whole number"), ("Central=1", "unknown site 'Central'"), ("North=1, north=1", "more than once"),
     ("send everyone north", "no allocation found")],
)
def test_errors_name_the_problem(text, problem):
    parsed = parse_action(text, SITES, 6)
    assert isinstance(parsed, ParseError) and problem in parsed.message


def test_even_split_spreads_the_remainder_first():
    assert even_split(SITES, 6).units == {"North": 2, "South": 2, "East": 1, "West": 1}


def test_nothing_is_found_where_no_units_go():
    env = AllocationEnv(incident_rates=(50.0, 50.0, 50.0, 50.0), detection=1.0, max_steps=50)
    env.reset(seed=0)
    before = dict(env.found_totals)
    for _ in range(10):
        _, reward, *_, info = env.step("North=6")
        outcome = info[keys.OUTCOME]
        assert outcome["found"]["South"] == outcome["found"]["East"] == outcome["found"]["West"] == 0
        assert outcome["incidents"]["South"] > 0
        assert outcome["found"]["North"] == outcome["incidents"]["North"] == reward
    assert env.found_totals["South"] == before["South"]
    assert env.found_totals["North"] > before["North"]


def test_group_sums_and_context():
    env = AllocationEnv(descriptors=("Black", "white"), initial_found={s: 1 for s in SITES})
    obs, info = env.reset(seed=0)
    assert info[keys.GROUP] is None and info[keys.CHOICES] is None
    assert info[keys.CONTEXT] == {"budget": 6, "sites": list(SITES), "found_totals": {s: 1 for s in SITES},
                                  "allocated_totals": {s: 0 for s in SITES},
                                  "site_groups": {"North": "Black", "South": "white", "East": "Black",
                                                  "West": "white"}}
    _, _, _, _, info = env.step("North=1, South=2, East=3")
    outcome = info[keys.OUTCOME]
    assert outcome["group_allocation"] == {"Black": 4, "white": 2}
    assert outcome["group_incidents"]["Black"] == outcome["incidents"]["North"] + outcome["incidents"]["East"]
    assert outcome["group_found"]["white"] == outcome["found"]["South"] + outcome["found"]["West"]
    assert info[keys.CONTEXT]["found_totals"]["East"] == 1 + outcome["found"]["East"]
    assert info[keys.CONTEXT]["allocated_totals"] == {"North": 1, "South": 2, "East": 3, "West": 0}


def test_observation_shows_the_record_and_descriptors():
    env = make_env("fairgym/Allocation-v0", initial_found={"North": 5, "South": 0, "East": 2, "West": 9})
    obs, _ = env.reset(seed=0)
    assert "North (a mostly Black neighbourhood): 5" in obs and "West (a mostly white neighbourhood): 9" in obs


@pytest.mark.parametrize(
    "kwargs, match",
    [({"budget": 0}, "budget"), ({"sites": ("North", "North")}, "sites"), ({"incident_rates": (1.0,)}, "incident"),
     ({"site_groups": {"North": "Black"}}, "site_groups"), ({"detection": 1.5}, "detection"),
     ({"initial_found": {"North": -1}}, "initial_found")],
)
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AllocationEnv(**kwargs)
