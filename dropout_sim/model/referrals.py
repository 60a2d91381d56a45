"""Referrals: needs found, consent, routing between services, handoffs and the dropout notice.

The school's clarification meeting (or, inside the elevtjeneste, any co-located agency's joint
intake) finds a new case's needs; each need served by another agency becomes a *wanted*
referral (``wants[row, agency]``). Routing turns wanted referrals into referrals:

* **consent** (*taushetsplikt*): the student must agree to share with the next service; the
  chance rises with the student's trust and is higher inside the elevtjeneste, where consent
  signed once covers every co-located service (``consent_given``). Sharing has a cost: the
  student's trust falls per service informed;
* **sequencing**: a running case at a service that is not concurrent with the next one makes
  the referral wait (one need at a time, "first get well, then work");
* **delay**: the referral reaches the queue after the pair's referral delay.

When a service's case ends and a waiting referral should follow, the baton may be dropped
(:meth:`Referrals.handoff`). When a student leaves school, the hub tells the agencies that are
notified of dropouts (OT); between siloed services the notice may never arrive, and OT then
finds the youth only through its register, without the school's information.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..rng import Streams
from .agencies import Agency
from .columns import PerStudent
from .regimes import Regime
from .students import IN_SCHOOL, NEED_BIT, Students


class Referrals(PerStudent):
    """Per-student referral state: wanted referrals, elevtjeneste consent, and what went wrong."""

    COLUMNS = {"wants": (bool, False), "consent_given": (bool, False),
               "consent_refusals": (np.int16, 0), "dropped_handoffs": (np.int16, 0),
               "lost_notices": (np.int16, 0)}
    WIDE = ("wants",)

    def __init__(self, agencies: Sequence[Agency], hub: Agency | None):
        self.agencies = list(agencies)
        self.hub = hub
        self.allocate(0, len(self.agencies))
        self.sent = np.zeros((len(self.agencies), len(self.agencies)))
        """sent[a, b]: referrals and notices a passed to b this month (joint work that builds collaboration;
        students the rows stand for)."""
        self.referable = [a for a in self.agencies if a is not hub and not a.serves_outside]
        """Agencies the clarification meeting can refer to (services for students in school)."""

    def clarify(self, st: Students, rows: np.ndarray, engaged: np.ndarray) -> None:
        """The clarification meeting / joint plan finds each new case's needs and who serves them
        (``engaged``: (len(rows), K), row i for ``rows[i]``: referral in transit, queued or case open)."""
        if rows.size == 0:
            return
        needs = st.needs[rows]
        for agency in self.referable:
            new = ((needs & agency.need_bits) != 0) & ~engaged[:, agency.index]
            self.wants[rows[new], agency.index] = True

    def transfer_needs(self, st: Students, rows: np.ndarray, share: float, streams: Streams, t: int) -> np.ndarray:
        """Information transfer from lower secondary: documented needs (a share of intake needs)
        are known before school starts. Returns the rows with a transferred need."""
        served = np.uint8(0)
        for agency in self.referable:
            served |= agency.need_bits
        served &= ~NEED_BIT["academic"]  # grades are the grades transfer's business
        has = (st.needs_at_intake[rows] & served) != 0
        documented = streams.bernoulli("transfer.needs", t, st.gid[rows], share)
        return rows[has & documented]

    def route(self, t: int, st: Students, regime: Regime, streams: Streams, lead_held: np.ndarray,
              sharing_cost: float) -> None:
        """Turn wanted referrals into referrals: consent-gated, delayed, sequential unless concurrent."""
        if self.hub is None:
            return
        s = self.hub.index
        # Only rows with a wanted referral can change: work on them (ascending, as a full scan would).
        rows_w = np.unique(np.flatnonzero(self.wants) // self.wants.shape[1])  # wants is sparse
        active = st.active(rows_w)
        self.wants[rows_w[~active]] = False
        rows_w = rows_w[active]
        if rows_w.size == 0:
            return
        in_school = st.status[rows_w] == IN_SCHOOL
        engaged = np.stack([a.engaged(rows_w) for a in self.agencies], axis=1)  # (rows_w, K)
        colocated = regime.is_colocated
        for agency in self.referable:
            b = agency.index
            want_b = self.wants[rows_w, b]
            resolved = want_b & ~agency.has_served_need(st, rows_w)
            self.wants[rows_w[resolved], b] = False  # the need went away while the referral waited
            pick = want_b & ~engaged[:, b] & in_school & ~resolved
            rows, sub = rows_w[pick], np.flatnonzero(pick)
            if rows.size == 0:
                continue
            # Sequential help: another service's running involvement blocks b unless concurrent.
            others = np.flatnonzero(engaged[sub].any(axis=0))
            blocked = np.zeros(rows.size, dtype=bool)
            for a in others:
                if a in (s, b):
                    continue
                blocked |= engaged[sub, a] & ~regime.concurrent_for(a, b, lead_held[rows])
            rows, sub = rows[~blocked], sub[~blocked]
            if rows.size == 0:
                continue
            gids = st.gid[rows]
            # Consent: inside the elevtjeneste consent signed once covers every co-located service.
            seamless = colocated[s] & colocated[b] & self.consent_given[rows] & regime.on["consent"]
            p = regime.consent_for(s, b, st.trust[rows], lead_held[rows])
            consent = seamless | streams.bernoulli(f"consent.{agency.name}", t, gids, p)
            refused = rows[~consent]
            self.consent_refusals[refused] += 1
            self.wants[refused, b] = False
            go, go_gid = rows[consent], gids[consent]
            self.wants[go, b] = False
            at_intake = ~seamless[consent] & colocated[s] & colocated[b] & regime.on["consent"]  # of go
            self.consent_given[go[at_intake]] = True
            # Sharing costs trust: one service informed, or every co-located one at a joint intake.
            informed = np.where(at_intake, max(1, int(colocated.sum()) - 1), 1)
            informed[seamless[consent]] = 0
            st.trust[go] = np.maximum(0.0, st.trust[go] - sharing_cost * informed)
            referred = agency.refer(go, go_gid, t, regime.referral_delay[s, b], f"delay.{agency.name}", streams)
            engaged[np.searchsorted(rows_w, referred), b] = True
            self.sent[s, b] += st.weight[referred].sum()

    def handoff(self, t: int, st: Students, agency: Agency, ended: np.ndarray, regime: Regime,
                streams: Streams, lead_held: np.ndarray, trust_loss: float) -> None:
        """A case ended: services still waiting on it (not concurrent with it) may drop the baton."""
        if ended.size == 0 or agency is self.hub:
            return  # the school refers while it teaches: its case never holds the baton
        a = agency.index
        for nxt in self.referable:
            b = nxt.index
            if b == a:
                continue
            waiting = ended[self.wants[ended, b]]
            if waiting.size == 0:
                continue
            lead = lead_held[waiting]
            waiting = waiting[~regime.concurrent_for(a, b, lead)]  # only a service that made b wait drops it
            p = regime.handoff_drop_for(a, b, lead_held[waiting])
            drop = waiting[streams.bernoulli(f"handoff.{agency.name}.{nxt.name}", t, st.gid[waiting], p)]
            self.wants[drop, b] = False
            self.dropped_handoffs[drop] += 1
            st.trust[drop] = np.maximum(0.0, st.trust[drop] - trust_loss)

    def notify_dropouts(self, t: int, st: Students, rows: np.ndarray, regime: Regime, streams: Streams,
                        lead_held: np.ndarray) -> None:
        """The school tells the agencies notified of dropouts (OT) who left; the notice may be lost
        between siloed services, and arrives after the pair's referral delay."""
        if rows.size == 0:
            return
        self.wants[rows] = False
        source = self.hub.index if self.hub is not None else None
        for agency in self.agencies:
            if not agency.cfg.notified_of_dropouts:
                continue
            s = agency.index if source is None else source
            gids = st.gid[rows]
            lost = streams.bernoulli(f"notice.{agency.name}", t, gids,
                                     regime.notice_loss_for(s, agency.index, lead_held[rows]))
            self.lost_notices[rows[lost]] += 1
            sent = agency.refer(rows[~lost], gids[~lost], t, regime.referral_delay[s, agency.index],
                                f"delay.{agency.name}", streams)
            self.sent[s, agency.index] += st.weight[sent].sum()
