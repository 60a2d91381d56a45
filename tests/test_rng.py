"""Named counter-based streams: reproducible, subset-invariant, uniform, independent."""

import numpy as np
from scipy import stats

from dropout_sim.rng import Streams


def test_same_key_same_numbers_bit_for_bit():
    ids = np.arange(1000)
    a = Streams(7, 2).uniform("dropout", 13, ids)
    b = Streams(7, 2).uniform("dropout", 13, ids)
    assert np.array_equal(a, b)


def test_draw_for_a_student_does_not_depend_on_who_else_is_drawn():
    s = Streams(1, 0)
    full = s.uniform("stress", 5, np.arange(10_000))
    subset = np.array([3, 17, 9_999, 4_242])
    assert np.array_equal(s.uniform("stress", 5, subset), full[subset])


def test_streams_months_seeds_and_replicates_differ():
    ids = np.arange(2000)
    base = Streams(1, 0).uniform("x", 0, ids)
    for other in (Streams(1, 0).uniform("y", 0, ids), Streams(1, 0).uniform("x", 1, ids),
                  Streams(2, 0).uniform("x", 0, ids), Streams(1, 1).uniform("x", 0, ids)):
        assert not np.array_equal(base, other)
        assert abs(np.corrcoef(base, other)[0, 1]) < 0.06


def test_uniform_distribution_and_no_serial_correlation():
    u = Streams(3, 0).uniform("dropout", 0, np.arange(200_000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 0.001
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    # neighbouring months of the same student are independent too
    v = Streams(3, 0).uniform("dropout", 1, np.arange(200_000))
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01


def test_derived_distributions():
    s = Streams(5, 0)
    ids = np.arange(100_000)
    z = s.normal("n", 0, ids)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    e = s.exponential("e", 0, ids, 3.0)
    assert abs(e.mean() - 3.0) < 0.05 and e.min() >= 0
    assert abs(s.bernoulli("b", 0, ids, 0.3).mean() - 0.3) < 0.01
