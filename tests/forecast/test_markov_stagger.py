"""Refitting some series of the Markov chain gives what a full refit gives for them."""

from __future__ import annotations

import numpy as np

from forethought.forecast.history import History
from forethought.forecast.models.markov import MarkovChain


def test_refitting_a_slice_matches_a_full_refit_on_those_series() -> None:
    rng = np.random.default_rng(2)
    n = 30
    history = History(n, 300)
    full, sliced = MarkovChain(), MarkovChain()
    full.reset(n)
    sliced.reset(n)
    ok = np.ones(n, dtype=bool)
    for _ in range(60):
        y = rng.gamma(2.0, 5.0, n)
        history.append(y, ok)
        full.observe(y, ok, history)
        sliced.observe(y, ok, history)
    full.predict(6, history)
    sliced.predict(6, history)  # caches the median paths
    for _ in range(7):  # new data, then refit one slice only
        y = rng.gamma(2.0, 5.0, n)
        history.append(y, ok)
    rows = np.arange(0, n, 3)
    sliced._fit(history, rows)
    full._fit(history)
    np.testing.assert_allclose(sliced._matrix[rows], full._matrix[rows])
    np.testing.assert_allclose(sliced._edges[rows], full._edges[rows])
    a = sliced.predict(6, history).values[rows]
    b = full.predict(6, history).values[rows]
    np.testing.assert_allclose(a, b)


def test_staggered_chain_refits_every_series_within_a_period() -> None:
    rng = np.random.default_rng(4)
    n = 24
    history = History(n, 300)
    chain = MarkovChain(refit_every=6)
    chain.stagger = True
    chain.reset(n)
    ok = np.ones(n, dtype=bool)
    for _ in range(40):
        y = rng.gamma(2.0, 5.0, n)
        history.append(y, ok)
        chain.observe(y, ok, history)
    before = chain._edges.copy()
    for _ in range(12):
        y = rng.gamma(2.0, 5.0, n) + 50.0  # a level shift every series must pick up
        history.append(y, ok)
        chain.observe(y, ok, history)
    assert (chain._edges.max(axis=1) > before.max(axis=1)).all()
