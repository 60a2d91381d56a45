"""Intake: who a new Vg1 cohort is (drawn once per entry cohort, shared by every scenario).

:func:`draw_cohort` returns the intake states of :data:`dropout_sim.model.students.INTAKE_STATES`
for ``n`` students from a numpy Generator seeded by (seed, replicate, entry cohort), so
replicate *r* of every scenario sees the same students in every year group.

Who they are (brief section 9, ``population`` config): gender and parents' highest education
are drawn from the county's shares; grade points are drawn given both (the level's mean, girls
``+gap/2``, boys ``-gap/2``, a skew-normal spread with a long tail of low scores); the track is
chosen given grade points (and gender), with the intercept solved so the cohort's vocational
share is ``cohort.vocational_share``. Initial mastery follows grade points.
"""

from __future__ import annotations

import functools

import numpy as np

from ..schema import EDUCATION_LEVELS, GENDERS, CohortConfig, PopulationConfig
from .students import NEED_BIT

GRADE_POINTS_MIN, GRADE_POINTS_MAX = 10.0, 60.0
"""Lower-secondary grade points are a bounded scale."""


def _beta(gen: np.random.Generator, mean: float, concentration: float, n: int) -> np.ndarray:
    """Beta draws with the given mean; degenerate means give constant arrays."""
    if mean <= 0.0 or mean >= 1.0:
        return np.full(n, float(mean))
    return gen.beta(mean * concentration, (1.0 - mean) * concentration, n)


def initial_mastery(grade_points: np.ndarray, noise: np.ndarray, slope: float = 0.0194) -> np.ndarray:
    """Academic footing at intake: 0.1 + ``slope`` per grade point above 10, plus individual noise."""
    return np.clip(0.1 + slope * (grade_points - GRADE_POINTS_MIN) + noise, 0.0, 1.0)


def _categorical(gen: np.random.Generator, shares: dict[str, float], names: tuple, n: int) -> np.ndarray:
    """Codes (index into ``names``) drawn with the given shares (normalised)."""
    p = np.array([shares.get(name, 0.0) for name in names], dtype=float)
    cum = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cum, gen.random(n), side="right"), len(names) - 1).astype(np.int8)


def _skew_normal(gen: np.random.Generator, shape: float, n: int) -> np.ndarray:
    """Standardised skew-normal draws (mean 0, sd 1; ``shape`` < 0: long left tail)."""
    delta = shape / np.sqrt(1.0 + shape * shape)
    x = delta * np.abs(gen.standard_normal(n)) + np.sqrt(1.0 - delta * delta) * gen.standard_normal(n)
    mean, var = delta * np.sqrt(2.0 / np.pi), 1.0 - 2.0 * delta * delta / np.pi
    return (x - mean) / np.sqrt(var)


def _skew_normal_grid(shape: float, k: int = 64) -> np.ndarray:
    """A deterministic k x k quadrature of the standardised skew-normal (normal quantiles on a grid)."""
    from scipy.special import ndtri

    q = ndtri((np.arange(k) + 0.5) / k)
    delta = shape / np.sqrt(1.0 + shape * shape)
    x = (delta * np.abs(q)[:, None] + np.sqrt(1.0 - delta * delta) * q[None, :]).ravel()
    return (x - delta * np.sqrt(2.0 / np.pi)) / np.sqrt(1.0 - 2.0 * delta * delta / np.pi)


def location_for_mean(target: np.ndarray, sd: float, shape: float) -> np.ndarray:
    """Location of each group's distribution such that its mean *on the 10-60 scale* (the draw is
    truncated by redrawing) equals ``target``: the register's means are of real, bounded scores."""
    return np.array(_location_for_mean(tuple(np.asarray(target, dtype=float).ravel()), float(sd), float(shape)))


@functools.lru_cache(maxsize=32)
def _location_for_mean(target_tuple: tuple, sd: float, shape: float) -> tuple:
    target = np.clip(np.array(target_tuple), GRADE_POINTS_MIN + 0.5, GRADE_POINTS_MAX - 0.5)
    if sd <= 0:
        return tuple(target)
    z = sd * _skew_normal_grid(shape)
    lo, hi = target - 4.0 * sd - 10.0, target + 4.0 * sd + 10.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        x = mid[:, None] + z[None, :]
        inside = (x >= GRADE_POINTS_MIN) & (x <= GRADE_POINTS_MAX)
        # no grid point on the scale: the truncated mean is at the bound the distribution lies beyond
        # (0 here sent the search ever upward, to locations where nothing can be drawn on the scale)
        beyond = np.where(mid > 0.5 * (GRADE_POINTS_MIN + GRADE_POINTS_MAX), GRADE_POINTS_MAX, GRADE_POINTS_MIN)
        count = inside.sum(axis=1)
        mean = np.where(count > 0, (x * inside).sum(axis=1) / np.maximum(count, 1), beyond)
        below = mean < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return tuple(0.5 * (lo + hi))


MAX_REDRAWS = 1000
"""Rounds of redrawing grade points off the 10-60 scale before the rest are set to the bound."""


def draw_grade_points(pop: PopulationConfig, gen: np.random.Generator, gender: np.ndarray,
                      education: np.ndarray) -> np.ndarray:
    """Grade points given gender (0 female, 1 male) and parents' education (codes of EDUCATION_LEVELS):
    each group's mean on the 10-60 scale is the level's mean, girls ``+gap/2``, boys ``-gap/2``
    (draws outside the scale are redrawn; the location is set so the group mean holds)."""
    level_mean = np.array([pop.grade_points_by_parents_education.get(name, 40.0) for name in EDUCATION_LEVELS])
    group_mean = level_mean[None, :] + pop.grade_points_gender_gap * (0.5 - np.arange(2))[:, None]
    loc = location_for_mean(group_mean.ravel(), pop.grade_points_sd, pop.grade_points_skew).reshape(group_mean.shape)
    mean = loc[gender, education]
    gp = mean + pop.grade_points_sd * _skew_normal(gen, pop.grade_points_skew, mean.size)
    bad = np.flatnonzero((gp < GRADE_POINTS_MIN) | (gp > GRADE_POINTS_MAX))
    for _ in range(MAX_REDRAWS):
        if not bad.size:
            break
        gp[bad] = mean[bad] + pop.grade_points_sd * _skew_normal(gen, pop.grade_points_skew, bad.size)
        bad = bad[(gp[bad] < GRADE_POINTS_MIN) | (gp[bad] > GRADE_POINTS_MAX)]
    # only a distribution with almost no mass on the scale gets here (extreme sd and skew): the bounds
    return np.clip(gp, GRADE_POINTS_MIN, GRADE_POINTS_MAX)


TRACK_CENTRE = 43.0
"""Grade points at which the track-choice slope is centred (about the national mean)."""


def choose_track(pop: PopulationConfig, share: float, gen: np.random.Generator, grade_points: np.ndarray,
                 gender: np.ndarray) -> np.ndarray:
    """Track (1 = vocational) chosen given grade points and gender; the intercept is solved (bisection,
    vectorised) so the expected vocational share of this cohort is ``share``."""
    n = grade_points.size
    if share <= 0.0 or share >= 1.0:
        return np.full(n, int(share >= 1.0), dtype=np.int8)
    x = pop.track_grade_points_slope * (TRACK_CENTRE - grade_points) + pop.track_male_logit * gender
    lo, hi = -30.0, 30.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if (1.0 / (1.0 + np.exp(-(mid + x)))).mean() < share:
            lo = mid
        else:
            hi = mid
    p = 1.0 / (1.0 + np.exp(-(0.5 * (lo + hi) + x)))
    return (gen.random(n) < p).astype(np.int8)


def draw_cohort(cohort: CohortConfig, gen: np.random.Generator, n: int,
                population: PopulationConfig | None = None) -> dict[str, np.ndarray]:
    """Intake states of ``n`` new Vg1 students."""
    pop = population or PopulationConfig()
    gender = _categorical(gen, pop.gender_shares, GENDERS, n)
    education = _categorical(gen, pop.parents_education_shares, EDUCATION_LEVELS, n)
    gp = draw_grade_points(pop, gen, gender, education)
    track = choose_track(pop, cohort.vocational_share, gen, gp, gender)
    mastery = initial_mastery(gp, cohort.mastery_noise_sd * gen.standard_normal(n), pop.mastery_grade_points_slope)
    k = cohort.state_concentration
    strain = _beta(gen, cohort.strain_mean, k, n)
    belonging = _beta(gen, cohort.belonging_mean, k, n)
    trust = _beta(gen, cohort.trust_mean, k, n)
    engagement = np.clip(0.75 + 0.25 * mastery - 0.2 * strain, 0.0, 1.0)

    needs = np.zeros(n, dtype=np.uint8)
    needs[gen.random(n) < cohort.psychosocial_prevalence] |= NEED_BIT["psychosocial"]
    needs[gen.random(n) < cohort.financial_prevalence] |= NEED_BIT["financial"]
    # Learning difficulties are more common among low grade points and practical needs on
    # the vocational track; the weights keep the cohort-wide prevalence as configured.
    low_gp = 0.25 + np.clip((50.0 - gp) / 40.0, 0.0, 1.0)
    needs[gen.random(n) < np.clip(cohort.learning_difficulty_prevalence * low_gp / low_gp.mean(), 0, 1)] |= \
        NEED_BIT["learning_difficulty"]
    practical_w = 0.5 + track
    needs[gen.random(n) < np.clip(cohort.practical_prevalence * practical_w / practical_w.mean(), 0, 1)] |= \
        NEED_BIT["practical"]
    return {"gender": gender, "parents_education": education, "track": track, "grade_points": gp,
            "mastery": mastery, "strain": strain, "belonging": belonging, "climate": belonging.copy(),
            "trust": trust, "trust0": trust.copy(), "engagement": engagement,
            "needs": needs}
