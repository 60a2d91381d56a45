"""Regimes: which agencies are co-located, as pairwise mechanisms that build with collaboration.

A regime is the set of agencies sitting together at the school (the *elevtjeneste*, "one door
in"), optionally from a reform month on, optionally with lead workers. Every mechanism of
brief section 3 is a property of a *pair* of agencies (a, b) (:data:`~dropout_sim.schema.MECHANISMS`):

* **structural** mechanisms switch on when the pair is co-located and the reform has started:
  information sharing, joint assessment, concurrent help, joint meetings, resource-team time;
* **relational** mechanisms move from their siloed to their co-located value as the pair's
  *collaboration* ``r[a, b]`` (0-1) grows: referral delay, consent, handoffs, the dropout
  notice, coordination hours, fragmentation of responsibility, practice variation.

Collaboration between two co-located services grows with their joint work - students both
help in a month, referrals and notices passed between them, the resource team's regular
meetings (``collaboration_build_per_year``
at full joint load, half of it at ``collaboration_joint_cases`` per 1,000 enrolled a month) -
and decays with staff turnover (``turnover_per_year`` on each side). A
mechanism left out of ``regime.mechanisms`` keeps its siloed value for every pair (the
decomposition experiment). A student who has a lead worker gets the co-located value of each
mechanism in ``regime.lead_worker.mechanisms`` for every pair, whatever the co-location set.

:class:`Regime` keeps K x K matrices (K = agencies in activation order) recomputed once a
month, so the monthly step applies them to all students at once.
"""

from __future__ import annotations

import numpy as np

from ..schema import MECHANISMS, AgencyConfig, RegimeConfig

RELATIONAL = ("referral_delay", "consent", "handoff", "dropout_notice", "coordination", "fragmentation",
              "practice")
STRUCTURAL = ("information_sharing", "joint_assessment", "concurrent_help", "joint_meetings", "resource_team")
assert set(RELATIONAL) | set(STRUCTURAL) == set(MECHANISMS)


class Regime:
    """Pairwise mechanisms of a co-location set over agencies in activation order.

    Call :meth:`refresh` at the start of every month (reform start, collaboration); read the
    effective matrices; call :meth:`build_collaboration` with the month's joint cases.
    """

    def __init__(self, cfg: RegimeConfig, agencies: dict[str, AgencyConfig], hub: int | None,
                 reform_month: int):
        self.cfg = cfg
        self.names = list(agencies)
        self.index = {name: i for i, name in enumerate(self.names)}
        k = len(self.names)
        self.hub = hub
        self.reform_month = reform_month
        """County month the co-location set takes effect (0 = from the start)."""
        self.members = np.array([name in cfg.colocated for name in self.names], dtype=bool)
        self.on = {m: m in cfg.mechanisms for m in MECHANISMS}
        self.lead_on = {m: cfg.lead_worker.enabled and m in cfg.lead_worker.mechanisms for m in MECHANISMS}
        self.siloed_delay = np.array([a.siloed_delay_months for a in agencies.values()], dtype=float)
        self.collaboration = np.zeros((k, k))
        """r[a, b] in 0-1: working relationship of two co-located services (grows with joint cases)."""
        np.fill_diagonal(self.collaboration, 1.0)
        self.refresh(0)

    # ------------------------------------------------------------------ monthly state
    def refresh(self, t: int) -> None:
        """Recompute the effective matrices for county month ``t``."""
        cfg = self.cfg
        self.is_active = t >= self.reform_month
        colocated = self.members & self.is_active
        pair = np.logical_and.outer(colocated, colocated)
        np.fill_diagonal(pair, True)
        self.is_colocated = colocated
        """is_colocated[a]: agency a sits in the elevtjeneste this month."""
        self.colocated_pair = pair
        """colocated_pair[a, b]: both in the elevtjeneste (an agency is always 'with' itself)."""

        def weight(mechanism: str) -> np.ndarray:
            """0 = siloed value, 1 = co-located value, per pair."""
            if not self.on[mechanism]:
                w = np.zeros_like(self.collaboration)
            elif mechanism in STRUCTURAL:
                w = pair.astype(float)
            else:
                w = np.where(pair, self.collaboration, 0.0)
            np.fill_diagonal(w, 1.0)
            return w

        def mix(mechanism: str, colocated: float, siloed) -> np.ndarray:
            w = weight(mechanism)
            return siloed + w * (colocated - np.asarray(siloed, dtype=float))

        self.referral_delay = mix("referral_delay", cfg.colocated_delay_months, self.siloed_delay[None, :])
        """Mean referral delay into agency b from agency a, months."""
        self.consent_prob = mix("consent", cfg.consent_prob_colocated, cfg.consent_prob_siloed)
        """Consent for a referral from a to b at average trust (the student's trust shifts it)."""
        self.handoff_drop = mix("handoff", cfg.handoff_drop_colocated, cfg.handoff_drop_siloed)
        self.notice_loss = mix("dropout_notice", cfg.dropout_notice_loss_colocated, cfg.dropout_notice_loss_siloed)
        """notice_loss[a, b]: chance a's notice of a dropout never reaches b."""
        coord = mix("coordination", cfg.coordination_hours_colocated, cfg.coordination_hours_siloed)
        np.fill_diagonal(coord, 0.0)
        self.coordination_hours = coord
        frag = mix("fragmentation", cfg.fragmentation_colocated, cfg.fragmentation_siloed)
        np.fill_diagonal(frag, 0.0)
        self.fragmentation = frag
        self.concurrent = weight("concurrent_help") > 0
        """concurrent[a, b]: a referral to b may start while a case at a runs (else one need at a time)."""
        self.joint_assessment = weight("joint_assessment") > 0
        self.shares_information = weight("information_sharing") > 0
        self.meets_jointly = colocated & self.on["joint_meetings"]
        """meets_jointly[a]: a's meetings with a student are the elevtjeneste's joint meeting."""
        self.resource_team = colocated & self.on["resource_team"]
        """resource_team[a]: a spends resource-team hours this month."""
        if self.hub is None:
            self.practice_weight = np.zeros(len(self.names))
        else:
            self.practice_weight = weight("practice")[self.hub].copy()

    def practice_sd(self, agency: int) -> float:
        """Spread of approval between offices/caseworkers: narrowed with the school (shared practice)."""
        w = self.practice_weight[agency]
        return float(self.cfg.practice_sd_siloed + w * (self.cfg.practice_sd_colocated - self.cfg.practice_sd_siloed))

    def build_collaboration(self, joint_work: np.ndarray, enrolled: int) -> None:
        """One month of collaboration: growth with the joint work of co-located pairs (a symmetric
        K x K count of students both helped this month plus referrals and notices passed between
        them either way), decay with staff turnover on both sides."""
        cfg = self.cfg
        decay = cfg.turnover_per_year / 12.0
        r = self.collaboration * (1.0 - decay) ** 2
        if self.is_active:
            load = joint_work / max(1.0, enrolled / 1000.0)
            # the resource team's regular meetings are joint work too (every 14 days, source)
            load = load + cfg.collaboration_joint_cases * np.logical_and.outer(self.resource_team, self.resource_team)
            rate = cfg.collaboration_build_per_year / 12.0 * load / (load + cfg.collaboration_joint_cases)
            grow = self.colocated_pair & (rate > 0)
            r = np.where(grow, r + np.minimum(1.0, rate) * (1.0 - r), r)
        np.fill_diagonal(r, 1.0)
        self.collaboration = np.clip(r, 0.0, 1.0)

    # ------------------------------------------------------------------ per student
    def lead(self, mechanism: str, lead_held: np.ndarray) -> np.ndarray:
        """Rows whose lead worker gives them the co-located value of ``mechanism``."""
        return lead_held if self.lead_on[mechanism] else np.zeros(lead_held.shape, dtype=bool)

    def _partner_sum(self, agency: int, involved: np.ndarray, lead_held: np.ndarray, mechanism: str,
                     matrix: np.ndarray, colocated_value: float) -> np.ndarray:
        """Per student: ``matrix[:, agency]`` summed over the student's other agencies (``involved``:
        (m, K); the agency's own entry does not count, the diagonal is 0), with the co-located value
        for every pair where the student's lead worker carries ``mechanism``."""
        inv = involved.astype(float)
        total = (inv @ matrix)[:, agency]  # the matrix product, not a column's: the same rounding for every agency
        lead = self.lead(mechanism, lead_held)
        if lead.any():
            base = np.full_like(matrix, colocated_value)
            np.fill_diagonal(base, 0.0)
            total[lead] = (inv[lead] @ base)[:, agency]
        return total

    def coordination(self, agency: int, involved: np.ndarray, lead_held: np.ndarray) -> np.ndarray:
        """Coordination hours per case-month that ``agency`` spends on each of m students with the
        (m, K) involvement matrix ``involved`` (one share per partner on the case)."""
        return self._partner_sum(agency, involved, lead_held, "coordination", self.coordination_hours,
                                 self.cfg.coordination_hours_colocated)

    def effectiveness(self, agency: int, involved: np.ndarray, lead_held: np.ndarray) -> np.ndarray:
        """Effect multiplier of ``agency``'s help per student: responsibility fragments with partners."""
        dilution = self._partner_sum(agency, involved, lead_held, "fragmentation", self.fragmentation,
                                     self.cfg.fragmentation_colocated)
        return 1.0 / (1.0 + dilution)

    def meetings(self, involved: np.ndarray, lead_held: np.ndarray) -> np.ndarray:
        """Meetings per student this month: one per agency that meets separately, one joint
        meeting for the elevtjeneste (if any of it is involved); a lead worker meets the
        student alone (one meeting)."""
        separate = (involved & ~self.meets_jointly).sum(axis=1)
        joint = (involved & self.meets_jointly).any(axis=1)
        n = separate + joint
        lead = self.lead("joint_meetings", lead_held)
        return np.where(lead & involved.any(axis=1), 1, n)

    def concurrent_for(self, a: int, b: int, lead_held: np.ndarray) -> np.ndarray:
        """Per student: may help at b start while a case at a runs?"""
        return self.concurrent[a, b] | self.lead("concurrent_help", lead_held)

    def handoff_drop_for(self, a: int, b: int, lead_held: np.ndarray) -> np.ndarray:
        return np.where(self.lead("handoff", lead_held), self.cfg.handoff_drop_colocated, self.handoff_drop[a, b])

    def notice_loss_for(self, a: int, b: int, lead_held: np.ndarray) -> np.ndarray:
        return np.where(self.lead("dropout_notice", lead_held), self.cfg.dropout_notice_loss_colocated,
                        self.notice_loss[a, b])

    def consent_for(self, a: int, b: int, trust: np.ndarray, lead_held: np.ndarray) -> np.ndarray:
        """Chance of consent to share with b (referral from a): the pair's base, shifted by the
        student's trust (logit slope ``consent_trust_slope`` around trust 0.7)."""
        base = np.where(self.lead("consent", lead_held), self.cfg.consent_prob_colocated, self.consent_prob[a, b])
        p = np.clip(base, 1e-9, 1 - 1e-9)
        logit = np.log(p / (1 - p)) + self.cfg.consent_trust_slope * (trust - 0.7)
        return np.where(base >= 1.0, 1.0, np.where(base <= 0.0, 0.0, 1.0 / (1.0 + np.exp(-logit))))

