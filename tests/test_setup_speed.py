"""Member decks of a study are built in O(members) cheap work (issue 20), and are the decks
full validation gives: the resolved base deck with the varied values patched in, each value
checked by its field's rule, representative members validated in full
(:class:`isosim.studies.ensemble.Decks`). In-process, no MPI, no PETSc solve."""

import copy
import json

import numpy as np
import pytest
from support import INPUT, load_raw

from isosim.deck.specs import parse_values
from isosim.errors import DeckError
from isosim.studies import ensemble
from isosim.studies.ensemble import Plan, _validate_all, expand


def _full(raw, path, vary=(), samples=0, seed=0, extra=()):
    """What expand gave before issue 20: every member validated in full."""
    base = ensemble.validate(copy.deepcopy(raw), path)
    plan = Plan(base, path, vary, samples, seed, extra)
    assignments = plan.assignments(np.arange(plan.n))
    return _validate_all(raw, path, assignments, None), {k: [a.get(k) for a in assignments] for k in plan.keys}


def _text(decks):
    # json keeps the key order and tells 1 from 1.0: equal text is the same decks
    return [json.dumps(d) for d in decks]


def _vary(*specs):
    return [parse_values(s) for s in specs]


CASES = [
    ("xiong_fig2.toml", _vary("temperature.rate_C_per_Myr=log:1:1e7:300"), 0, ()),
    ("xiong_fig1.toml", _vary("temperature.rate_C_per_Myr=1,10", "phases.opx.radius_mm=0.5,1,2",
                              "grid.cells=20,30"), 0, ()),
    ("xiong_fig1.toml", _vary("phases.opx.beta=0.01,0.02", "phases.opx.beta=0.03,0.04"), 0, ()),
    ("xiong_fig1.toml", _vary("ensemble.mode=batch,independent"), 0, ()),
    ("spera2004_montecarlo.toml", _vary("assimilation.chi=0.5,1"), 40, ()),
    ("xiong_fig1.toml", (), 0, [{"phases.opx.beta": b, "phases.cpx.beta": c}
                                for c in (0.01, 0.02) for b in np.linspace(0.0, 0.5, 5)]),
    ("xiong_fig1.toml", _vary("phases.opx.radius_mm=1,2"), 0,
     [{"phases.opx.beta": 0.1}, {"phases.cpx.beta": 0.2, "phases.opx.beta": 0.3}]),
]


@pytest.mark.parametrize("name, vary, samples, extra", CASES)
def test_patched_members_are_the_fully_validated_ones(name, vary, samples, extra):
    raw, path = load_raw(name), str(INPUT / name)
    decks, params = expand(raw, path, vary, samples, 3, extra)
    full, full_params = _full(raw, path, vary, samples, 3, extra)
    assert _text(decks) == _text(full)
    assert json.dumps(params) == json.dumps(full_params)


def test_a_varied_key_other_values_depend_on_is_validated_in_full():
    """Delta_eq_A sets lnK_offset_K2 in validation: a patched deck would keep the base's."""
    raw = load_raw("xiong_fig1.toml")
    raw["phases"]["opx"].pop("lnK_offset_K2")
    raw["phases"]["opx"]["Delta_eq_A"] = [0.0, 0.646]
    path = str(INPUT / "xiong_fig1.toml")
    extra = [{"phases.opx.Delta_eq_A": [0.0, a]} for a in (0.5, 0.646, 0.7)]
    decks, _ = expand(raw, path, extra=extra)
    assert [d["phases"]["opx"]["lnK_offset_K2"] for d in decks] == [[0.0, 500.0], [0.0, 646.0], [0.0, 700.0]]
    assert _text(decks) == _text(_full(raw, path, extra=extra)[0])


@pytest.mark.parametrize("spec", [
    "phases.opx.beta=0.1,0.2,0.6,0.9,-1",              # field rules
    "temperature.end_C=lin:500:1300:50",               # a cross-field rule, broken at the extremes
    "nonsense.key=1,2",                                # not a key of the deck
    "phases.new.beta=1,2",                             # a phase the base deck does not have
    "grid.cells=10,20,30.5",
])
def test_bad_members_are_named_as_full_validation_names_them(spec):
    raw, path = load_raw("xiong_fig1.toml"), str(INPUT / "xiong_fig1.toml")
    with pytest.raises(DeckError) as got:
        expand(raw, path, _vary(spec))
    with pytest.raises(DeckError) as want:
        _full(raw, path, _vary(spec))
    assert str(got.value) == str(want.value)
    assert "member " in str(got.value)


def test_a_large_sweep_validates_only_representatives(monkeypatch):
    """4096 members: a few dozen full validations (first, last, every eighth, the extremes),
    not one per member (~0.3 ms each: over a second of serial set-up)."""
    calls = []
    real = ensemble.validate
    monkeypatch.setattr(ensemble, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    raw, path = load_raw("xiong_fig2.toml"), str(INPUT / "xiong_fig2.toml")
    decks, params = expand(raw, path, _vary("temperature.rate_C_per_Myr=log:1:1e7:4096"))
    assert len(decks) == 4096 and len(calls) < 20
    assert [d["temperature"]["rate_C_per_Myr"] for d in decks] == params["temperature.rate_C_per_Myr"]
