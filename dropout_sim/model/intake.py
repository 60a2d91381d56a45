"""Intake: who a new Vg1 cohort is (drawn once per entry cohort, shared by every scenario).

:func:`draw_cohort` returns the intake states of :data:`dropout_sim.model.students.INTAKE_STATES`
for ``n`` students from a numpy Generator seeded by (seed, replicate, entry cohort), so
replicate *r* of every scenario sees the same students in every year group.
"""

from __future__ import annotations

import numpy as np

from ..schema import CohortConfig
from .students import NEED_BIT, VOCATIONAL

GRADE_POINTS_MIN, GRADE_POINTS_MAX = 10.0, 60.0
"""Lower-secondary grade points are a bounded scale."""


def _beta(gen: np.random.Generator, mean: float, concentration: float, n: int) -> np.ndarray:
    """Beta draws with the given mean; degenerate means give constant arrays."""
    if mean <= 0.0 or mean >= 1.0:
        return np.full(n, float(mean))
    return gen.beta(mean * concentration, (1.0 - mean) * concentration, n)


def initial_mastery(grade_points: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Academic footing at intake: grade points mapped to 0.1-0.95, plus individual noise."""
    return np.clip(0.1 + 0.85 * (grade_points - GRADE_POINTS_MIN) / 50.0 + noise, 0.0, 1.0)


def draw_cohort(cohort: CohortConfig, gen: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Intake states of ``n`` new Vg1 students."""
    track = (gen.random(n) < cohort.vocational_share).astype(np.int8)
    mean_gp = np.where(track == VOCATIONAL, cohort.grade_points_mean_vocational, cohort.grade_points_mean_academic)
    # truncated to the scale by resampling
    gp = mean_gp + cohort.grade_points_sd * gen.standard_normal(n)
    bad = (gp < GRADE_POINTS_MIN) | (gp > GRADE_POINTS_MAX)
    while bad.any():
        gp[bad] = mean_gp[bad] + cohort.grade_points_sd * gen.standard_normal(int(bad.sum()))
        bad = (gp < GRADE_POINTS_MIN) | (gp > GRADE_POINTS_MAX)
    mastery = initial_mastery(gp, cohort.mastery_noise_sd * gen.standard_normal(n))
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
    return {"track": track, "grade_points": gp, "mastery": mastery, "strain": strain, "belonging": belonging,
            "climate": belonging.copy(), "trust": trust, "trust0": trust.copy(), "engagement": engagement,
            "needs": needs}
