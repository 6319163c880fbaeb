"""The sampling contract every family shares (``Family.sample`` and its ``_distinct`` helper)."""

from __future__ import annotations

import json

import pytest

from engine.families import SpecError, get, names


@pytest.mark.parametrize("name", names())
def test_samples_are_deterministic_valid_and_distinct_where_promised(name):
    fam = get(name)
    a, b = fam.sample(12, seed=4), fam.sample(12, seed=4)
    assert a == b and len(a) == 12
    assert a != fam.sample(12, seed=5)
    keys = [fam.canonical(s) for s in a]
    assert all(fam.validate(s) is not None for s in a)
    if name in ("hiaml", "inception", "two_path", "nb101", "nb201"):  # the samplers that promise distinct specs
        assert len(set(keys)) == len(keys)
    assert fam.sample(0, seed=1) == []


@pytest.mark.parametrize("name", ["hiaml", "inception", "two_path", "nb101", "nb201"])
def test_negative_n_is_refused(name):
    with pytest.raises(ValueError, match="n must be"):
        get(name).sample(-1)


def test_distinct_skips_rejected_and_repeated_draws_and_gives_up_after_max_draws():
    fam = get("hiaml")
    draws = iter([None, ["r30"] * 4, ["r30"] * 4, None, ["t31"] * 4])
    assert fam._distinct(2, 0, lambda rng: next(draws)) == [["r30"] * 4, ["t31"] * 4]
    with pytest.raises(RuntimeError, match=r"hiaml sample: only 1 distinct valid specs after 5 draws"):
        fam._distinct(2, 0, lambda rng: ["r30"] * 4, max_draws=5)


@pytest.mark.parametrize("name", names())
def test_parse_accepts_the_spec_as_json_text(name):
    fam = get(name)
    spec = fam.sample(1, seed=2)[0]
    text = spec if isinstance(spec, str) else json.dumps(spec)
    assert fam.canonical(fam.parse(text)) == fam.canonical(spec)
    assert fam.canonical(fam.parse(spec)) == fam.canonical(spec)


@pytest.mark.parametrize("text", ["", "not a spec", "[1, 2", '{"x": 1}', "42"])
def test_parse_refuses_bad_text_with_the_familys_error(text):
    for name in names():
        with pytest.raises(SpecError):
            get(name).parse(text)
