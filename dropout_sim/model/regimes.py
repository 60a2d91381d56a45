"""Regimes: which agencies are co-located, expressed as pairwise mechanism matrices.

A regime is the set of agencies sitting together at the school (the *elevtjeneste*,
"one door in"). Every mechanism of brief section 3 is a property of a *pair* of agencies
(a, b): it takes its co-located value when both are co-located, its siloed value otherwise.
:class:`Regime` turns the config into K x K matrices (K = number of agencies) so the
monthly step can apply them to all students at once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..schema import RegimeConfig


class Regime:
    """Pairwise mechanisms of a co-location set over agencies in activation order."""

    def __init__(self, cfg: RegimeConfig, agency_names: Sequence[str], delays_siloed: Sequence[float]):
        self.cfg = cfg
        self.names = list(agency_names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.is_colocated = np.array([name in cfg.colocated for name in self.names], dtype=bool)
        pair = np.logical_and.outer(self.is_colocated, self.is_colocated)
        np.fill_diagonal(pair, True)
        self.colocated_pair = pair
        """colocated_pair[a, b]: a and b share the elevtjeneste (a agency is always 'with' itself)."""

        def by_pair(colocated: float, siloed: float) -> np.ndarray:
            return np.where(pair, colocated, siloed)

        # Referral delay into agency b from agency a (months, mean of an exponential).
        self.referral_delay = np.where(pair, cfg.colocated_delay_months,
                                       np.asarray(delays_siloed, dtype=float)[None, :])
        self.consent_prob = by_pair(cfg.consent_prob_colocated, cfg.consent_prob_siloed)
        self.handoff_drop = by_pair(cfg.handoff_drop_colocated, cfg.handoff_drop_siloed)
        coord = by_pair(cfg.coordination_hours_colocated, cfg.coordination_hours_siloed)
        np.fill_diagonal(coord, 0.0)
        self.coordination_hours = coord
        frag = by_pair(cfg.fragmentation_colocated, cfg.fragmentation_siloed)
        np.fill_diagonal(frag, 0.0)
        self.fragmentation = frag
        # Concurrent help: a referral to b may start while a case at a runs only if a, b co-located;
        # otherwise help comes one need at a time ("first get well, then work").
        self.concurrent = pair

    def colocated(self, a: str, b: str) -> bool:
        return bool(self.colocated_pair[self.index[a], self.index[b]])

    def practice_sd(self, school: str | None, agency: str) -> float:
        """Spread of approval between caseworkers: narrowed when co-located with the school."""
        shared = school is not None and self.colocated(school, agency)
        return self.cfg.practice_sd_colocated if shared else self.cfg.practice_sd_siloed

    def coordination(self, involved: np.ndarray) -> np.ndarray:
        """Coordination hours per (student, agency) for an (m, K) involvement matrix."""
        return (involved.astype(float) @ self.coordination_hours) * involved

    def effectiveness(self, involved: np.ndarray) -> np.ndarray:
        """Effect multiplier per (student, agency): responsibility fragments with partners."""
        return 1.0 / (1.0 + involved.astype(float) @ self.fragmentation)

    def meetings(self, involved: np.ndarray) -> np.ndarray:
        """Meetings per student this month: one per siloed agency, one joint meeting for the
        co-located group (if any of it is involved)."""
        siloed = (involved & ~self.is_colocated).sum(axis=1)
        joint = (involved & self.is_colocated).any(axis=1)
        return siloed + joint
