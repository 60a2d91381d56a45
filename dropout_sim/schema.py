"""Typed configuration schema: every parameter a user may vary, with unit, range and default.

The dataclasses below are registered in Hydra's ConfigStore, so YAML files and command-line
overrides are type-checked against them (struct mode: an unknown key is an error). Each
field is declared with :func:`param`, which records its unit, allowed range, a one-line
meaning and its source ("starting value", "source: ..." or "calibrated"). :func:`validate`
checks every range at start-up and raises :class:`ConfigError` with one line naming the key;
``docs/ODD.md``'s parameter table is generated from the same metadata.

Units: months, hours per month, probabilities per month, shares (0-1) and grade points.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Dict, List, Optional

from .errors import ConfigError

NEEDS = ("academic", "psychosocial", "financial", "learning_difficulty", "practical")
"""The five kinds of need a student may have (brief section 1, "composite challenges")."""

STATUSES = ("in_school", "apprentice", "outside")
"""Student statuses an agency can serve (``completed`` students need no service)."""

SHAREABLE = ("strain",)
"""Student information an agency can hold and share with the screening agency (with consent)."""

MECHANISMS = ("referral_delay", "consent", "information_sharing", "joint_assessment", "concurrent_help",
              "handoff", "dropout_notice", "coordination", "fragmentation", "practice", "joint_meetings",
              "resource_team")
"""The pairwise mechanisms of co-location (brief section 3, part two section 8). Each takes its
co-located value for a pair of co-located agencies when it is listed in ``regime.mechanisms``."""

LEAD_WORKER_MECHANISMS = ("consent", "concurrent_help", "handoff", "dropout_notice", "coordination",
                          "fragmentation", "joint_meetings")
"""What a lead worker changes for the student it holds (default of ``regime.lead_worker.mechanisms``):
one contact person asks consent once, holds the baton, arranges help in parallel, carries the
coordination and meets the student alone. Referral delays, separate intakes, practice
variation and the school's view of strain stay as the co-location set makes them."""

MAX_HORIZON_MONTHS = 240

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""Names that become part of file paths (``regime.name``): identifiers, never ``/`` or ``..``."""


def param(default: Any, unit: str, lo: float | None = None, hi: float | None = None,
          doc: str = "", source: str = "starting value", choices: tuple | None = None,
          default_factory: Any = None) -> Any:
    """Declare a config field with its unit, allowed range [lo, hi], meaning and source."""
    meta = {"unit": unit, "lo": lo, "hi": hi, "doc": doc, "source": source, "choices": choices}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _list(*items: str):
    return lambda: list(items)


# --------------------------------------------------------------------------------------
# cohort: who starts Vg1 together
# --------------------------------------------------------------------------------------
@dataclass
class CohortConfig:
    """Each August's synthetic entry cohort (the county draws one a year; focal ones are reported)."""

    size: int = param(3000, "students", 1, 10_000_000, "students entering Vg1 each August (one county's intake)")
    vocational_share: float = param(0.5, "share", 0, 1, "share entering yrkesfag (vocational); who chooses it "
                                    "follows grade points (population.track_grade_points_slope)",
                                    source="source: Statistics Norway, about half")
    mastery_noise_sd: float = param(0.06, "mastery", 0, 0.5,
                                    "noise of initial mastery around the grade-point mapping")
    strain_mean: float = param(0.22, "strain (0-1)", 0, 1, "mean psychosocial strain at intake")
    belonging_mean: float = param(0.65, "belonging (0-1)", 0, 1, "mean belonging at intake")
    trust_mean: float = param(0.7, "trust (0-1)", 0, 1, "mean trust in helpers at intake")
    state_concentration: float = param(12.0, "Beta concentration", 0.5, 1000,
                                       "concentration of the Beta draws for strain, belonging, trust")
    psychosocial_prevalence: float = param(0.15, "share", 0, 1, "share with a psychosocial need at intake")
    financial_prevalence: float = param(0.08, "share", 0, 1, "share with a financial need at intake")
    learning_difficulty_prevalence: float = param(0.08, "share", 0, 1,
                                                  "share with a learning difficulty at intake (more among low grade points)")
    practical_prevalence: float = param(0.10, "share", 0, 1,
                                        "share needing practical, work-oriented teaching at intake")


# --------------------------------------------------------------------------------------
# population: who the students are (gender, parents' education, grade points, track choice)
# --------------------------------------------------------------------------------------
GENDERS = ("female", "male")
EDUCATION_LEVELS = ("compulsory", "upper_secondary", "higher_short", "higher_long", "unknown")
"""Parents' highest education (SSB's levels): compulsory school only, upper secondary, higher
education up to 4 years, higher education over 4 years, unknown."""


def _gender_shares() -> Dict[str, float]:
    return {"female": 0.488, "male": 0.512}


def _education_shares() -> Dict[str, float]:
    return {"compulsory": 0.08, "upper_secondary": 0.33, "higher_short": 0.35, "higher_long": 0.18, "unknown": 0.06}


def _education_grade_points() -> Dict[str, float]:
    return {"compulsory": 36.9, "upper_secondary": 40.6, "higher_short": 44.7, "higher_long": 47.7, "unknown": 36.3}


@dataclass
class PopulationConfig:
    """Who a Vg1 cohort is: gender and parents' education (shares per county), grade points drawn
    given both, and the track chosen given grade points (brief part two, section 9)."""

    gender_shares: Dict[str, float] = param(None, "share", 0, 1, "share of each gender (female, male) among "
                                            "Vg1 entrants; must sum to 1", default_factory=_gender_shares,
                                            source="source: SSB, about 51 % of 16-year-olds are boys")
    parents_education_shares: Dict[str, float] = param(
        None, "share", 0, 1, "share of entrants by parents' highest education (compulsory, upper_secondary, "
        "higher_short, higher_long, unknown); must sum to 1", default_factory=_education_shares,
        source="starting value: brief section 9 (replace with the county's own counts)")
    grade_points_by_parents_education: Dict[str, float] = param(
        None, "grade points", 10, 60, "mean lower-secondary grade points by parents' highest education",
        default_factory=_education_grade_points, source="source: SSB 2020 (brief section 9)")
    grade_points_gender_gap: float = param(4.4, "grade points", -20, 20,
                                           "girls' mean minus boys' within each parents' education level "
                                           "(girls get +gap/2, boys -gap/2)",
                                           source="source: SSB 2020, girls 45.4, boys 41.0")
    grade_points_sd: float = param(10.44, "grade points", 0, 25,
                                   "spread of grade points within a gender x parents' education group (each "
                                   "group's mean on the 10-60 scale stays its configured mean)",
                                   source="calibrated: section-9 targets (grade-point bands)")
    grade_points_skew: float = param(-2.203, "skew-normal shape", -20, 20,
                                     "shape of the grade-point distribution (negative: a long tail of low "
                                     "scores, students with missing grades); 0 = normal",
                                     source="calibrated: section-9 targets (the register's long tail below 25 points)")
    track_grade_points_slope: float = param(0.17, "logit per grade point", 0, 5,
                                            "how strongly low grade points steer the choice of yrkesfag (the "
                                            "intercept is solved so the vocational share is cohort.vocational_share)",
                                            source="calibrated: SSB, vocational entrants score about 7 points "
                                            "below academic ones")
    track_male_logit: float = param(0.45, "logit", -5, 5,
                                    "boys' extra log-odds of choosing yrkesfag at the same grade points",
                                    source="source: SSB, about 55 % of boys and 40 % of girls start yrkesfag")
    mastery_grade_points_slope: float = param(0.01941, "mastery per grade point", 0, 0.1,
                                              "initial mastery gained per grade point (mastery is 0.1 + slope x "
                                              "(grade points - 10), clipped to 0-1)", source="calibrated")


# --------------------------------------------------------------------------------------
# routes: omvalg, påbygg, 'fullført, ikke bestått' and private-candidate retakes
# --------------------------------------------------------------------------------------
@dataclass
class RoutesConfig:
    """Routes through upper secondary besides the straight one (brief section 9)."""

    switch_prob: float = param(0.12, "probability per year", 0, 1,
                               "chance a Vg1 student at mean mastery changes programme in June (omvalg: starts "
                               "Vg1 again in the new programme; costs a year)",
                               source="starting value: Udir, about 1 in 10 change programme")
    switch_mastery_tilt: float = param(3.0, "logit per mastery", 0, 50,
                                       "how much more often low-mastery students change programme "
                                       "(logit added per unit of mastery below 0.5)")
    switch_other_track_share: float = param(0.5, "share", 0, 1,
                                            "share of switchers who change track (academic <-> vocational); the "
                                            "rest change programme within their track")
    switch_fresh_start: float = param(0.3, "share", 0, 1,
                                      "share of strain relieved and of the belonging gap to 0.65 closed by the new "
                                      "programme (a better fit); a practical need is met by yrkesfag")
    pabygg_voluntary_prob: float = param(0.10, "probability", 0, 1,
                                         "chance a vocational Vg2 passer chooses påbygg (Vg3 to the academic "
                                         "diploma) instead of seeking an apprenticeship",
                                         source="starting value: SSB, påbygg is common among vocational students")
    pabygg_prob: float = param(0.30, "probability", 0, 1,
                               "chance a vocational Vg2 passer without a contract takes påbygg (before Vg3 in school)")
    pabygg_mastery_drop: float = param(0.08, "mastery", 0, 1,
                                       "extra mastery lost on starting påbygg (academic subjects compressed into "
                                       "one year)")
    move_up_with_fail_prob: float = param(0.9745, "probability", 0, 1,
                                          "chance a Vg1/Vg2 student who fails the year moves up anyway with a "
                                          "missing grade (a subject not passed) instead of repeating; the missing "
                                          "grades must be retaken before the diploma",
                                          source="calibrated: section-9 targets (most students move up with a "
                                          "failed subject)")
    fib_share: float = param(0.7, "share", 0, 1,
                             "share of final-year (Vg3) failers who finish the year without passing ('fullført, "
                             "ikke bestått') and retake exams as private candidates; the rest repeat Vg3 (a final-"
                             "year passer still missing an earlier grade that a retake in June does not clear "
                             "is always 'fullført, ikke bestått')")
    private_retake_prob: float = param(0.3525, "probability per exam term", 0, 1,
                                       "chance a private candidate sits the missing exams in an exam term "
                                       "(December, June)", source="calibrated: section-9 targets (years 4-5)")
    private_mastery_gain: float = param(0.05, "mastery", 0, 1,
                                        "mastery gained by preparing for a retake (added before the pass draw)")
    private_window_months: int = param(30, "months", 0, 120,
                                       "months after 'fullført, ikke bestått' during which a private candidate "
                                       "keeps trying")


@dataclass
class LaereplassConfig:
    """Apprenticeship contracts: a limited county supply each year, matched by mastery."""

    contracts_per_1000: float = param(235.8, "contracts per year per 1,000 Vg1 entrants", 0, 1000,
                                      "new apprenticeship contracts employers offer each year (from June), per 1,000 "
                                      "students of one intake (the county's size); a bad year for employers is a "
                                      "lower value", source="calibrated: SSB 2023, 79 % direct progression from "
                                      "vocational Vg2")
    mastery_noise_sd: float = param(0.1039, "mastery", 0, 5,
                                    "noise of employers' view of an applicant's mastery (0 = contracts go strictly "
                                    "to the highest mastery)", source="calibrated: the section-9 grade-point bands")
    school_vg3_prob: float = param(0.35, "probability", 0, 1,
                                   "chance a vocational student without a contract (and not on påbygg) takes Vg3 "
                                   "in school; the rest leave and seek a contract again")


# --------------------------------------------------------------------------------------
# dynamics: the monthly student mechanisms
# --------------------------------------------------------------------------------------
@dataclass
class DynamicsConfig:
    """Monthly student mechanisms: stress, the low-mastery/avoidance circle, dropout hazard."""

    stress_event_prob: float = param(0.06, "probability per month", 0, 1, "chance of a stress event")
    stress_event_size: float = param(0.12, "strain", 0, 1, "mean strain added by a stress event")
    psychosocial_onset_prob: float = param(0.25, "probability per event", 0, 1,
                                           "chance a stress event starts a psychosocial need")
    financial_onset_prob: float = param(0.004, "probability per month", 0, 1,
                                        "chance a financial need starts (family, living costs)")
    learning_rate: float = param(0.03, "mastery per month", 0, 1,
                                 "mastery gained per month at full attendance, lost at low attendance")
    attendance_floor: float = param(0.72, "share attended", 0, 1,
                                    "attendance below which mastery falls (absence erodes footing)")
    learning_difficulty_penalty: float = param(0.012, "mastery per month", 0, 1,
                                               "monthly mastery lost to an unassisted learning difficulty")
    level_step_mastery_drop: float = param(0.06, "mastery", 0, 1,
                                           "mastery lost when starting a harder level (Vg2, Vg3, apprenticeship)")
    low_mastery_threshold: float = param(0.4587, "mastery", 0, 1,
                                         "mastery below which negative feedback builds strain",
                                         source="calibrated: the section-9 grade-point bands")
    low_mastery_strain: float = param(0.08, "strain per month per mastery unit", 0, 5,
                                      "strain added per month per unit of mastery below the threshold")
    financial_strain: float = param(0.012, "strain per month", 0, 1, "strain added per month by an active financial need")
    strain_recovery: float = param(0.06, "share per month", 0, 1,
                                   "share of strain that fades per month (scaled by belonging)")
    belonging_rate: float = param(0.05, "share per month", 0, 1, "pull of belonging toward the class climate")
    belonging_strain_loss: float = param(0.03, "belonging per month", 0, 1,
                                         "belonging lost per month when strain is above 0.5")
    engagement_rate: float = param(0.3, "share per month", 0, 1, "how fast attendance moves to its target")
    engagement_intercept: float = param(0.6, "logit", -20, 20, "attendance target intercept")
    engagement_mastery: float = param(3.0, "logit per mastery", 0, 50, "avoidance: low mastery lowers attendance")
    engagement_strain: float = param(3.5, "logit per strain", 0, 50, "high strain lowers attendance")
    engagement_belonging: float = param(1.5, "logit per belonging", 0, 50, "belonging raises attendance")
    dropout_intercept: float = param(-9.033, "logit per month", -30, 10, "base monthly dropout hazard",
                                     source="calibrated")
    dropout_engagement: float = param(5.0, "logit per unit absence", 0, 50, "hazard from low attendance")
    dropout_strain: float = param(3.0, "logit per strain", 0, 50, "hazard from high strain")
    dropout_mastery: float = param(4.154, "logit per unit low mastery", 0, 50, "hazard from low mastery",
                                   source="calibrated: the grade-point gradient (brief section 9)")
    dropout_failing: float = param(0.0, "logit", 0, 20,
                                   "extra hazard while mastery is below dynamics.failing_mastery (failing "
                                   "subjects); a structural alternative, 0 in the calibrated model: it trades "
                                   "the 40-45 band for the 25-30 band (docs/calibration.md, round 8)")
    failing_mastery: float = param(0.55, "mastery", 0, 1,
                                   "mastery below which a student is failing subjects (dynamics.dropout_failing)")
    dropout_vocational: float = param(0.0, "logit", -10, 10, "extra hazard on the vocational track",
                                      source="set to 0: track acts through grade points (brief section 9)")
    transition_hazard_multiplier: float = param(3.0, "multiplier", 1, 50,
                                                "extra hazard in the August a new level starts")
    apprentice_hazard_multiplier: float = param(0.6, "multiplier", 0, 50,
                                                "hazard of cancelling an apprenticeship relative to school")
    spontaneous_reentry_prob: float = param(0.006, "probability per month", 0, 1,
                                            "chance an outside youth decides to return without help")
    reentry_strain_relief: float = param(0.3, "share", 0, 1, "share of strain relieved on re-entry")
    acceptance_base: float = param(0.3, "probability", 0, 1,
                                   "chance of accepting offered help at zero trust (rises with trust to 1)")
    trust_recovery: float = param(0.02, "share per month", 0, 1, "drift of trust back toward its intake value")


# --------------------------------------------------------------------------------------
# progression: the school calendar, June decisions, apprenticeship
# --------------------------------------------------------------------------------------
@dataclass
class ProgressionConfig:
    """June progression decisions, the læreplass bottleneck and the fagprøve."""

    pass_threshold: float = param(0.6046, "mastery", 0, 1, "mastery at which passing the year is 50/50",
                                  source="calibrated")
    pass_slope: float = param(8.0, "logit per mastery", 0, 100, "steepness of the June pass decision",
                                source="calibrated: on time vs within five years (brief section 9)")
    vocational_pass_offset: float = param(0.0084, "mastery", 0, 0.5,
                                          "how much lower the 50/50 mastery is in a vocational programme "
                                          "(Vg1-Vg3 in school, not påbygg): programme subjects are judged on "
                                          "practical work; 0 = the tracks alike", source="calibrated: section-9 "
                                          "targets (round 6, docs/calibration.md; the fit keeps it near 0)")
    repeat_mastery_boost: float = param(0.08, "mastery", 0, 1, "mastery regained by repeating a year")
    apprenticeship_months: int = param(24, "months", 1, 60, "length of the apprenticeship before the fagprøve")
    fagprove_threshold: float = param(0.3, "mastery", 0, 1, "mastery at which the fagprøve is 50/50")
    fagprove_retake_months: int = param(4, "months", 1, 24, "wait before retaking a failed fagprøve")


# --------------------------------------------------------------------------------------
# agencies
# --------------------------------------------------------------------------------------
@dataclass
class AgencyConfig:
    """One agency (school, PPT, health, NAV, OT or a plain referral-only service)."""

    serves: List[str] = param(None, "-", doc="student statuses the agency serves",
                              default_factory=_list("in_school", "apprentice"), choices=STATUSES)
    screens: bool = param(False, "on/off", doc="runs the systematic risk screening of absence and grades "
                          "(the school; at most one agency)")
    hub: bool = param(False, "on/off", doc="convenes the clarification meeting (avklaringsmøte) that finds "
                      "needs and refers on (the school; at most one agency)")
    notified_of_dropouts: bool = param(False, "on/off", doc="is told when a student leaves school (OT)")
    shares: List[str] = param(None, "-", doc="student information it holds and shares with the screening "
                              "agency when both are co-located and the student consented",
                              default_factory=_list(), choices=SHAREABLE)
    capacity_basis: str = param("enrolled", "-", doc="what posts are counted per 1,000 of: enrolled students, "
                                "or youths in the agency's target group (OT)", choices=("enrolled", "target_group"))
    max_months_since_entry: int = param(0, "months", 0, 240,
                                        "serves students at most this many months after their first day of Vg1 "
                                        "(OT: 60, until about 21 years of age); 0 = no limit")
    offices: int = param(1, "offices", 1, 1000, "local offices; practice and staff turnover vary by office "
                         "(NAV: 'person-dependent')")
    register_month: int = param(-1, "month of the school year", -1, 11,
                                "month it receives the register of eligible youths it does not know yet "
                                "(OT: October's list of those not enrolled); -1 = none")
    effect_halflife_months: float = param(0.0, "months", 0, 240,
                                          "its help's effect halves per this many months between the student's "
                                          "last exit and the start of the case (a late contact is less "
                                          "effective); 0 = no decay")
    uninformed_effect: float = param(1.0, "share", 0, 1,
                                     "share of the effect when the case reached it without the referring "
                                     "agency's information (a lost handoff found by the register)")
    nok_per_post_year: float = param(950_000.0, "NOK per post per year", 0, 1e8,
                                     "cost of a full-time post incl. social costs and overhead",
                                     source="starting value: brief section 10, NOK 0.8-1.1 million")
    posts_per_1000: float = param(1.0, "posts per 1,000", 0, 1000,
                                  "staff posts per 1,000 enrolled students (capacity_basis enrolled) or per "
                                  "1,000 youths in the target group (target_group)")
    casework_hours_per_post: float = param(70.0, "hours per month", 0, 744,
                                           "case-work hours per post per month (about half of 140)",
                                           source="source: brief, 1 post = 140 h, half case work")
    hours_per_case_month: float = param(3.0, "hours per month", 0.01, 744, "hours one case takes per month")
    assessment_hours: float = param(3.0, "hours", 0, 744, "hours of the intake assessment of a new case")
    case_months: int = param(4, "months", 1, 120, "how long a case runs once admitted")
    siloed_delay_months: float = param(1.0, "months", 0, 60,
                                       "mean referral delay into this agency from a non-co-located agency")
    needs: List[str] = param(None, "-", doc="needs this agency serves", default_factory=_list())
    self_referral_prob: float = param(0.0, "probability per month", 0, 1,
                                      "chance a student with a served need comes on their own (x trust)")
    approval_probability: float = param(1.0, "probability", 0, 1,
                                        "mean chance an assessed case is approved (NAV: rules interpreted per office)")
    mastery_effect: float = param(0.0, "mastery per month", -1, 1, "mastery added per month of help")
    strain_effect: float = param(0.0, "strain per month", -1, 1, "strain added per month of help (negative relieves)")
    belonging_effect: float = param(0.0, "belonging per month", -1, 1, "belonging added per month of help")
    engagement_effect: float = param(0.0, "logit", -10, 10, "attendance-target logit added while helped")
    need_resolution_prob: float = param(0.0, "probability per month", 0, 1,
                                        "chance per month of help that a served need is resolved")
    reentry_prob: float = param(0.0, "probability per month", 0, 1,
                                "OT: chance per month of follow-up that an outside youth re-enters")


@dataclass
class AgencySettings:
    """Settings of the ``agencies`` group that are not an agency (the planner's county-wide knobs)."""

    staffing_scale: float = param(1.0, "multiplier", 0, 100,
                                  "multiplies every agency's posts (a planner's one knob: 0.5 = half the staff)")


AGENCY_SETTINGS = tuple(f.name for f in fields(AgencySettings))
"""Reserved keys of ``agencies`` that are settings, not agencies (``agencies.staffing_scale``)."""


def _default_agencies() -> Dict[str, Any]:
    return {}


@dataclass
class LeadWorkerConfig:
    """One contact person who holds a student's case and answers for several agencies' services."""

    enabled: bool = param(False, "on/off", doc="students referred to other services get a lead worker")
    posts_per_1000: float = param(1.0, "posts per 1,000 enrolled", 0, 1000, "lead-worker posts")
    casework_hours_per_post: float = param(70.0, "hours per month", 0, 744, "case-work hours per post per month")
    hours_per_case_month: float = param(1.5, "hours per month", 0.01, 744,
                                        "hours a lead worker spends per student per month (contact, coordination)")
    assessment_hours: float = param(1.0, "hours", 0, 744, "hours to take over a case")
    case_months: int = param(8, "months", 1, 120, "how long the lead worker holds the case")
    mechanisms: List[str] = param(None, "-", doc="mechanisms that take their co-located value for a student "
                                  "with a lead worker (only these have a lead-worker form)",
                                  default_factory=_list(*LEAD_WORKER_MECHANISMS), choices=LEAD_WORKER_MECHANISMS)
    nok_per_post_year: float = param(950_000.0, "NOK per post per year", 0, 1e8, "cost of a lead-worker post")


@dataclass
class RegimeConfig:
    """Which agencies sit together at the school, and what that changes pair by pair.

    Every mechanism is a property of a *pair* of agencies: both co-located (inside the
    elevtjeneste) or not. Siloed = nobody co-located; fully co-located = all five.
    """

    name: str = param("siloed", "-", doc="label of the regime (used in reports and file names; an identifier)")
    colocated: List[str] = param(None, "-", doc="agencies co-located at the school", default_factory=_list())
    colocated_delay_months: float = param(0.25, "months", 0, 60,
                                          "mean referral delay between co-located agencies",
                                          source="source: resource team meets every 14 days")
    consent_prob_siloed: float = param(0.6, "probability", 0, 1,
                                       "chance consent is obtained for a referral across sectors (taushetsplikt)")
    consent_prob_colocated: float = param(0.95, "probability", 0, 1,
                                          "same inside the elevtjeneste, asked once at the joint intake",
                                          source="source: 'seamless' with consent forms")
    handoff_drop_siloed: float = param(0.25, "probability", 0, 1,
                                       "chance the baton is dropped when a case ends and the next service should take over")
    handoff_drop_colocated: float = param(0.0, "probability", 0, 1,
                                          "same between co-located agencies; acts only where they do not help "
                                          "concurrently (concurrent_help left out of regime.mechanisms or of the "
                                          "lead worker's): a concurrent pair hands no baton over",
                                          source="source: 'nobody lets go of the baton'")
    coordination_hours_siloed: float = param(1.5, "hours per case-month per partner", 0, 100,
                                             "coordination hours an agency spends per other siloed agency on the case")
    coordination_hours_colocated: float = param(0.4, "hours per case-month per partner", 0, 100,
                                                "same for a co-located partner (joint plan)")
    fragmentation_siloed: float = param(0.35, "effect dilution per partner", 0, 10,
                                        "loss of effect per other siloed agency on the case (responsibility fragments)")
    fragmentation_colocated: float = param(0.05, "effect dilution per partner", 0, 10,
                                           "same for a co-located partner")
    joint_assessment_share: float = param(0.3, "share", 0, 1,
                                          "share of the assessment hours still needed when a co-located partner has assessed")
    resource_team_hours_per_1000: float = param(8.0, "hours per month per 1,000 students", 0, 10000,
                                                "meeting time of the resource team, per co-located agency")
    trust_loss_per_meeting: float = param(0.015, "trust per meeting", 0, 1,
                                          "trust lost per meeting beyond the first in a month")
    trust_loss_dropped_handoff: float = param(0.12, "trust", 0, 1, "trust lost when a handoff is dropped")
    trust_gain_continuity: float = param(0.01, "trust per month", 0, 1, "trust gained per month of help")
    practice_sd_siloed: float = param(0.25, "probability", 0, 1,
                                      "spread of approval between caseworkers when not co-located with the school")
    practice_sd_colocated: float = param(0.08, "probability", 0, 1,
                                         "same when co-located with the school (shared practice)")
    mechanisms: List[str] = param(None, "-", doc="mechanisms that take their co-located value for co-located "
                                  "pairs (the rest stay siloed); the decomposition experiment lists one at a time",
                                  default_factory=_list(*MECHANISMS), choices=MECHANISMS)
    start_month: Optional[int] = param(None, "month", -240, MAX_HORIZON_MONTHS,
                                       "month the co-location reform starts, counted from the first focal "
                                       "cohort's first day of Vg1 (negative = during the warm-up); "
                                       "null = in place from the start of the warm-up")
    collaboration_build_per_year: float = param(2.0, "per year", 0, 100,
                                                "how fast collaboration between two co-located services grows "
                                                "with joint work (share of the gap closed per year at full joint load)")
    collaboration_joint_cases: float = param(1.0, "students per 1,000 enrolled per month", 0.001, 1e6,
                                             "joint work per month (students helped by both, referrals passed; per "
                                             "1,000 enrolled) at which collaboration builds at half its full rate")
    turnover_per_year: float = param(0.15, "share of posts per year", 0, 10,
                                     "staff turnover: working relationships fade at this rate on each side, and "
                                     "each office's practice changes with its caseworkers ('personavhengig')")
    onboarding_hours: float = param(6.0, "hours per new caseworker", 0, 1000,
                                    "hours each co-located partner spends teaching a new caseworker the joint work")
    consent_trust_slope: float = param(4.0, "logit per trust", 0, 50,
                                       "how strongly consent depends on the student's trust in helpers "
                                       "('not hard to get when relations are good')")
    sharing_trust_cost: float = param(0.01, "trust per agency informed", 0, 1,
                                      "trust lost per agency the student's information is shared with "
                                      "(students do not want everyone to know everything)")
    dropout_notice_loss_siloed: float = param(0.4, "probability", 0, 1,
                                              "chance the school's notice of a dropout never reaches a siloed OT "
                                              "(OT then finds the youth through its register)",
                                              source="starting value: brief section 8, 'the dropped baton'")
    dropout_notice_loss_colocated: float = param(0.02, "probability", 0, 1,
                                                 "same when school and OT are co-located")
    lead_worker: LeadWorkerConfig = field(default_factory=lambda: LeadWorkerConfig())


@dataclass
class InterventionConfig:
    """Early intervention (tidlig innsats): when screening starts, what triggers action, how strong."""

    screening_start_month: int = param(4, "month", 0, MAX_HORIZON_MONTHS - 1,
                                       "first month of systematic risk screening (0 = intake, 4 = after first-term grades)")
    info_transfer: str = param("none", "-", doc="what lower secondary transfers at intake: nothing, grades and "
                               "absence (the school sees mastery from intake), or also known needs (students with "
                               "documented needs go to the clarification meeting from intake)",
                               choices=("none", "grades", "needs"))
    needs_transfer_share: float = param(0.7, "share", 0, 1,
                                        "with info_transfer=needs: share of intake needs documented and transferred "
                                        "(consent at the transition)")
    risk_threshold: float = param(0.35, "risk score (0-1)", 0, 1,
                                  "risk score above which the school acts")
    review_interval_months: int = param(3, "months", 1, 24, "months between screening reviews")
    support_intensity: float = param(1.0, "multiplier", 0, 10,
                                     "scales hours per case-month and effects of all help")
    attendance_weight: float = param(0.4, "weight", 0, 1, "weight of absence in the risk score")
    mastery_weight: float = param(0.4, "weight", 0, 1, "weight of low mastery (grades) in the risk score")
    strain_weight: float = param(0.2, "weight", 0, 1,
                                 "weight of strain in the risk score (seen only when information is shared)")
    first_grades_month: int = param(4, "month of the school year", 0, 11,
                                    "month of the school year when first grades are known (4 = December)")
    queue_order: str = param("fifo", "-", doc="order of the school's queue: first come first served, or "
                             "highest observed risk first (triage)", choices=("fifo", "risk"))


@dataclass
class CountyConfig:
    """The county's upper-secondary population: a new Vg1 cohort every August, several year groups at once."""

    warmup_years: int = param(4, "years", 0, 20,
                              "school years simulated before the first focal cohort enters, so every year group "
                              "is present and queues and caseloads have settled")
    focal_cohorts: int = param(1, "cohorts", 1, 20,
                               "entry cohorts whose outcomes are reported (from the end of the warm-up)")
    nonfocal_share: float = param(0.5, "share", 0.25, 1,
                                  "share of each non-focal cohort (the warm-up's, and those entering after the "
                                  "focal cohorts) that is simulated; each of its students stands for about 1/share "
                                  "students in every count that sets scarcity (posts, hours, queues, caseloads, "
                                  "contracts, collaboration), so the focal cohorts meet the same county at a "
                                  "fraction of the cost. 1 simulates everyone")


@dataclass
class CostsConfig:
    """Costs and benefits in NOK (brief section 10). Post costs are per agency (``agencies.<a>.nok_per_post_year``)."""

    premises_nok_per_1000_year: float = param(150_000.0, "NOK per 1,000 enrolled per year", 0, 1e9,
                                              "extra premises of an elevtjeneste (paid when any agency is co-located)",
                                              source="starting value")
    value_per_completer_nok: Optional[float] = param(None, "NOK per completer", 0, 1e10,
                                                     "societal value of one extra completer; gives a benefit-cost "
                                                     "ratio only when set (Falch 2012: about NOK 7 million for a "
                                                     "person outside work from age 20)")


@dataclass
class OutputConfig:
    """What a run writes besides summary.json and monthly.csv."""

    students_table: bool = param(True, "on/off", doc="write students.csv (one row per student)")
    trajectory_sample: int = param(0, "students", 0, 1_000_000,
                                   "focal students whose monthly state is written to trajectories.csv (0 = none)")
    risk_measure_threshold: float = param(0.35, "risk score (0-1)", 0, 1,
                                          "risk score at which a student counts as at risk in the outputs "
                                          "(a fixed measurement, independent of the school's action threshold)")


@dataclass
class Config:
    """The whole run: cohort, agencies, regime, intervention, seed and horizon."""

    seed: int = param(42, "-", 0, 2**63 - 1, "base seed of all random streams")
    replicate: int = param(0, "-", 0, 2**31 - 1,
                           "replicate index; replicate r of every scenario shares its cohort and draws")
    horizon_months: int = param(72, "months", 1, MAX_HORIZON_MONTHS,
                                "months each focal cohort is followed from its first day of Vg1 (normert tid is 60)")
    cohort: CohortConfig = field(default_factory=CohortConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    progression: ProgressionConfig = field(default_factory=ProgressionConfig)
    routes: RoutesConfig = field(default_factory=RoutesConfig)
    laereplass: LaereplassConfig = field(default_factory=LaereplassConfig)
    agencies: Dict[str, Any] = field(default_factory=_default_agencies)
    """Agency name -> :class:`AgencyConfig`, plus the :class:`AgencySettings` keys (``staffing_scale``)."""
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    county: CountyConfig = field(default_factory=CountyConfig)
    costs: CostsConfig = field(default_factory=CostsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    posterior: Optional[str] = param(None, "-", doc="a calibration posterior: a shipped one, selected as the "
                                     "config group posterior=<name> (configs/posterior/<name>.yaml), or a "
                                     "path to a particles.csv (or its folder; posterior=<path> is read as "
                                     "posterior_path); with draw=k the run takes particle draw k's parameters "
                                     "(see dropout_sim/posterior.py); null = the config's own values",
                                     source="run setting")
    posterior_path: Optional[str] = param(None, "-", doc="a calibration posterior given by path: a "
                                          "particles.csv or the folder holding one (~ and paths relative to "
                                          "the current directory allowed; a shipped name works too). The "
                                          "command line's posterior=<path> becomes this key; composition moves "
                                          "it into posterior (the run's config.yaml shows posterior), so at "
                                          "most one of the two may be set; null = none",
                                          source="run setting")
    draw: Optional[int] = param(None, "-", 0, 2**31 - 1,
                                "which posterior draw to run (weighted resampling, the same particle for the "
                                "same k); needs posterior; null = draw 0 when posterior is set", source="run setting")


def register_configs() -> None:
    """Register the schema in Hydra's ConfigStore as ``base_config`` (idempotent)."""
    from hydra.core.config_store import ConfigStore

    global _REGISTERED_IN
    cs = ConfigStore.instance()
    if cs is _REGISTERED_IN and "base_config.yaml" in cs.repo:
        return  # storing converts the dataclasses again (0.1 s a call); the CLI calls this often
    cs.store(name="base_config", node=Config)
    # Each agency entry of configs/agencies/*.yaml takes this node as its default
    # ("- /agency@school: base"), so every AgencyConfig field is typed and overridable.
    cs.store(group="agency", name="base", node=AgencyConfig)
    register = _launcher_plugin()
    if register is not None:
        register()
    _REGISTERED_IN = cs


_REGISTERED_IN = None


def _launcher_plugin() -> Any:
    """``register`` of the project's Hydra launcher (hydra_plugins/dropout_sim_launcher, the default
    of ``dropout-sim -m``); found beside this package when an editable install predates it."""
    try:
        from hydra_plugins.dropout_sim_launcher import register
    except ImportError:
        import importlib
        from pathlib import Path

        here = Path(__file__).resolve().parent.parent / "hydra_plugins"
        if not (here / "dropout_sim_launcher" / "__init__.py").is_file():
            return None  # pragma: no cover
        try:
            namespace = importlib.import_module("hydra_plugins")
            namespace.__path__.append(str(here))
            from hydra_plugins.dropout_sim_launcher import register
        except (ImportError, AttributeError):  # pragma: no cover
            return None
    return register


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
def _fmt_range(meta: dict) -> str:
    lo, hi, unit = meta.get("lo"), meta.get("hi"), meta.get("unit", "")
    unit = f" ({unit})" if unit and unit != "-" else ""
    if lo is not None and hi is not None:
        return f"between {lo:g} and {hi:g}{unit}"
    if lo is not None:
        return f">= {lo:g}{unit}"
    return f"<= {hi:g}{unit}"


def _check_field(path: str, value: Any, meta: dict) -> None:
    if value is None:  # Optional fields: None means "not set" (the doc says what that does)
        return
    choices = meta.get("choices")
    if choices is not None:
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if item not in choices:
                where = f"{path}[{i}]" if isinstance(value, list) else path
                raise ConfigError(f"{where} = {item!r} is not allowed; allowed: one of {', '.join(choices)}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is None and hi is None or isinstance(value, bool):
        return
    if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{path} = {value!r} is not allowed; allowed: a number {_fmt_range(meta)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{path} = {value!r} is not allowed; allowed: {_fmt_range(meta)}")


def _walk(obj: Any, prefix: str) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if is_dataclass(value):
            _walk(value, path + ".")
        elif isinstance(value, dict):
            for key, sub in value.items():
                if is_dataclass(sub):
                    _walk(sub, f"{path}.{key}.")
        elif f.metadata:
            _check_field(path, value, f.metadata)


def agency_configs(cfg: Config) -> Dict[str, AgencyConfig]:
    """The agencies of ``cfg`` (name -> config) in activation order, without the settings keys."""
    return {name: a for name, a in cfg.agencies.items() if name not in AGENCY_SETTINGS}


def agency_setting(cfg: Config, name: str) -> Any:
    """An :class:`AgencySettings` value of ``cfg`` (its default when the config does not set it)."""
    return cfg.agencies.get(name, getattr(AgencySettings(), name))


def validate(cfg: Config) -> Config:
    """Check every range and cross-field rule; raise ConfigError with one line naming the key."""
    _walk(cfg, "")
    settings = {f.name: f for f in fields(AgencySettings)}
    for key in AGENCY_SETTINGS:
        if key in cfg.agencies:
            _check_field(f"agencies.{key}", cfg.agencies[key], settings[key].metadata)
    for name, agency in cfg.agencies.items():
        if name not in AGENCY_SETTINGS and not isinstance(agency, AgencyConfig):
            raise ConfigError(f"agencies.{name} = {agency!r} is not allowed; allowed: an agency (a mapping of "
                              f"agency keys) or one of the settings {', '.join(AGENCY_SETTINGS)}")
    agencies = agency_configs(cfg)
    names = set(agencies)
    if not names:
        raise ConfigError("agencies is empty; allowed: at least one agency (school, ppt, health, nav, ot)")
    for role in ("screens", "hub"):
        holders = [name for name, a in agencies.items() if getattr(a, role)]
        if len(holders) > 1:
            raise ConfigError(f"agencies: {', '.join(holders)} all have {role}: true; allowed: at most one agency")
    for name, agency in agency_configs(cfg).items():
        for need in agency.needs:
            if need not in NEEDS:
                raise ConfigError(f"agencies.{name}.needs contains {need!r}; allowed: {', '.join(NEEDS)}")
    for i, name in enumerate(cfg.regime.colocated):
        if name not in names:
            raise ConfigError(f"regime.colocated[{i}] = {name!r} is not an agency; allowed: "
                              f"{', '.join(sorted(names))}")
    if len(set(cfg.regime.colocated)) != len(cfg.regime.colocated):
        raise ConfigError(f"regime.colocated = {list(cfg.regime.colocated)} names an agency twice; "
                          "allowed: each agency at most once")
    _validate_county(cfg, agencies)
    if not isinstance(cfg.regime.name, str) or not NAME_PATTERN.fullmatch(cfg.regime.name):
        raise ConfigError(f"regime.name = {cfg.regime.name!r} is not allowed; allowed: an identifier of at most 64 "
                          "letters, digits, '_' and '-', starting with a letter (it becomes part of file paths)")
    _validate_population(cfg.population)
    if cfg.posterior_path is not None and cfg.posterior is not None:
        raise ConfigError(f"posterior = {cfg.posterior!r} and posterior_path = {cfg.posterior_path!r} are both set; "
                          "allowed: one posterior (posterior=<name> or posterior=<path>)")
    if cfg.draw is not None and cfg.posterior is None:
        raise ConfigError(f"draw = {cfg.draw} needs a posterior; allowed: posterior=<name or path> draw=<k>, "
                          "or no draw")
    iv = cfg.intervention
    if iv.screening_start_month >= cfg.horizon_months:
        raise ConfigError(f"intervention.screening_start_month = {iv.screening_start_month} is past the horizon; "
                          f"allowed: between 0 and horizon_months - 1 = {cfg.horizon_months - 1}")
    if iv.attendance_weight + iv.mastery_weight + iv.strain_weight <= 0:
        raise ConfigError("intervention.attendance_weight + mastery_weight + strain_weight = 0; "
                          "allowed: a positive sum")
    return cfg


def _allowed(names: Any) -> str:
    names = list(names)
    return ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + ", ..."


def _unknown_key(path: str, key: str, allowed: Any) -> ConfigError:
    import difflib

    guess = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" (did you mean {path}{guess[0]}?)" if guess else ""
    where = path.rstrip(".") or "the top level"
    return ConfigError(f"{path}{key} is not a config key{hint}; allowed keys of {where}: {_allowed(allowed)}")


def check_keys(node: Any, cls: type = Config, path: str = "") -> None:
    """Refuse any key of a composed config that the schema does not declare, however it got
    there (``+key=...`` and ``++key=...`` add keys even to typed nodes). ``hydra`` is Hydra's."""
    from omegaconf import DictConfig

    declared, nested = _schema_fields(cls)
    for key in node.keys():
        if not path and key == "hydra":
            continue
        if key not in declared:
            raise _unknown_key(path, key, declared)
        agencies = cls is Config and key == "agencies"
        if not agencies and key not in nested:  # a value: only an interpolation can fail, when resolved
            if node._get_node(key)._is_interpolation():
                node.get(key)
            continue
        value = node.get(key)
        if agencies and isinstance(value, DictConfig):
            for name in value.keys():
                if name in AGENCY_SETTINGS:
                    continue
                entry = value[name]
                if isinstance(entry, DictConfig):
                    check_keys(entry, AgencyConfig, f"agencies.{name}.")
            continue
        if isinstance(value, DictConfig):
            check_keys(value, nested[key], f"{path}{key}.")


_FIELDS: Dict[type, tuple] = {}


def _schema_fields(cls: type) -> tuple[dict, dict]:
    """(name -> field, name -> dataclass of the fields whose default is one) of a schema class."""
    if cls not in _FIELDS:
        declared = {f.name: f for f in fields(cls)}
        defaults = {name: f.default_factory() for name, f in declared.items() if f.default_factory is not MISSING}
        _FIELDS[cls] = declared, {name: type(d) for name, d in defaults.items() if is_dataclass(d)}
    return _FIELDS[cls]


def _agency_from(name: str, node: Any) -> AgencyConfig:
    """One ``agencies.<name>`` entry as a typed :class:`AgencyConfig` (one-line error if it is not one)."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(node, (DictConfig, dict)):
        raise ConfigError(f"agencies.{name} = {node!r} is not allowed; allowed: an agency (a mapping of agency "
                          f"keys) or one of the settings {', '.join(AGENCY_SETTINGS)}")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(AgencyConfig), node))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "key", None) or ""
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"agencies.{name}.{key}: {msg}".replace(f".{name}.:", f".{name}:")) from None


MAX_RUN_MONTHS = 480
"""Longest county run (warm-up + focal cohorts + horizon), months: 40 years."""


def min_warmup_years(agencies: Dict[str, AgencyConfig]) -> int:
    """Shortest warm-up the county's queues need, years: every school year group (Vg1-Vg3) present
    when the first focal cohort starts (2 years), and time for a case to pass through the slowest
    service (referral delay + case length)."""
    pipeline = max((a.siloed_delay_months + a.case_months for a in agencies.values()), default=0.0)
    return max(2, math.ceil(pipeline / 12.0))


def run_months(cfg: Config) -> int:
    """Months a county run simulates: warm-up, one year per extra focal cohort, then the horizon."""
    return 12 * (cfg.county.warmup_years + cfg.county.focal_cohorts - 1) + cfg.horizon_months


SHARE_SUM_TOLERANCE = 1e-3
"""How far a set of shares may sum from 1 (rounded county counts)."""


def _validate_shares(path: str, shares: Dict[str, float], allowed: tuple) -> None:
    """A mapping of group -> share: known groups only, each share 0-1, summing to 1."""
    for key, value in shares.items():
        if key not in allowed:
            raise ConfigError(f"{path}.{key} is not a known group; allowed: {', '.join(allowed)}")
        _check_field(f"{path}.{key}", value, {"lo": 0, "hi": 1, "unit": "share"})
    total = float(sum(shares.values()))
    if abs(total - 1.0) > SHARE_SUM_TOLERANCE:
        raise ConfigError(f"{path} sums to {total:g}; allowed: shares of {', '.join(allowed)} summing to 1")


def _validate_population(pop: "PopulationConfig") -> None:
    _validate_shares("population.gender_shares", pop.gender_shares, GENDERS)
    _validate_shares("population.parents_education_shares", pop.parents_education_shares, EDUCATION_LEVELS)
    means = pop.grade_points_by_parents_education
    for key, value in means.items():
        if key not in EDUCATION_LEVELS:
            raise ConfigError(f"population.grade_points_by_parents_education.{key} is not a known group; allowed: "
                              f"{', '.join(EDUCATION_LEVELS)}")
        _check_field(f"population.grade_points_by_parents_education.{key}", value,
                     {"lo": 10, "hi": 60, "unit": "grade points"})
    for key, share in pop.parents_education_shares.items():
        if share > 0 and key not in means:
            raise ConfigError(f"population.grade_points_by_parents_education.{key} is missing; allowed: a mean "
                              "(10-60 grade points) for every level with a positive share")


def _validate_county(cfg: Config, agencies: Dict[str, AgencyConfig]) -> None:
    county = cfg.county
    need = min_warmup_years(agencies)
    if county.warmup_years < need:
        raise ConfigError(f"county.warmup_years = {county.warmup_years} is shorter than the queues need; allowed: "
                          f">= {need} (every year group present and one pass through the slowest service)")
    if run_months(cfg) > MAX_RUN_MONTHS:
        most = (MAX_RUN_MONTHS - cfg.horizon_months) // 12 - county.warmup_years + 1
        raise ConfigError(f"county.focal_cohorts = {county.focal_cohorts} makes the run {run_months(cfg)} months "
                          f"long; allowed: at most {max(0, most)} focal cohorts with warmup_years = "
                          f"{county.warmup_years} and horizon_months = {cfg.horizon_months} "
                          f"({MAX_RUN_MONTHS} months in all)")
    start = cfg.regime.start_month
    last = 12 * (county.focal_cohorts - 1) + cfg.horizon_months - 1
    if start is not None and not -12 * county.warmup_years <= start <= last:
        raise ConfigError(f"regime.start_month = {start} is outside the run; allowed: between "
                          f"{-12 * county.warmup_years} (start of the warm-up) and {last} (the focal cohorts' last "
                          "month), or null (in place from the start)")
    for i, name in enumerate(cfg.regime.lead_worker.mechanisms):
        if name not in LEAD_WORKER_MECHANISMS:
            raise ConfigError(f"regime.lead_worker.mechanisms[{i}] = {name!r}; allowed: one of "
                              f"{', '.join(LEAD_WORKER_MECHANISMS)}")


def to_config(cfg: Any) -> Config:
    """Turn a composed DictConfig (or a Config) into a validated :class:`Config` object.

    Unknown keys anywhere are refused (:func:`check_keys`); each agency entry becomes a typed
    :class:`AgencyConfig`; ``posterior_path`` moves into ``posterior`` and the posterior draw's
    values are set (:mod:`dropout_sim.posterior`); then every range is checked (:func:`validate`).
    """
    if isinstance(cfg, Config):
        if cfg.posterior_path is not None:  # built without composition: move and apply it as composition does
            from .posterior import apply

            apply(take_posterior_path(cfg))
        return validate(cfg)
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    check_keys(cfg)
    obj = OmegaConf.to_object(cfg)
    if not isinstance(obj, Config):  # a plain mapping composed without the schema
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), cfg))
    obj.agencies = {name: (value if name in AGENCY_SETTINGS or isinstance(value, AgencyConfig)
                           else _agency_from(name, value))
                    for name, value in obj.agencies.items()}
    take_posterior_path(obj)
    if obj.posterior is not None:  # posterior=<name or path> draw=<k>: the drawn particle's values
        from .posterior import apply

        apply(obj)
    return validate(obj)


def take_posterior_path(obj: Config) -> Config:
    """Move ``posterior_path`` (a posterior given by path) into ``posterior`` (in place); a
    one-line ConfigError when both are set."""
    if obj.posterior_path is not None:
        if obj.posterior is not None:
            raise ConfigError(f"posterior = {obj.posterior!r} and posterior_path = {obj.posterior_path!r} are both "
                              "set; allowed: one posterior (posterior=<name> or posterior=<path>)")
        obj.posterior, obj.posterior_path = obj.posterior_path, None
    return obj


def iter_params(cls: type = Config, prefix: str = "") -> List[dict]:
    """Rows (key, unit, default, range, doc, source) for every parameter of the schema.

    ``agencies`` is a mapping, so its rows use the placeholder ``agencies.<name>``.
    """
    rows: List[dict] = []
    for f in fields(cls):
        path = f"{prefix}{f.name}"
        sub = None
        if f.default_factory is not MISSING and f.default_factory is not None and not f.metadata:
            sub = f.default_factory()
        if is_dataclass(sub):
            rows += iter_params(type(sub), path + ".")
        elif isinstance(sub, dict):
            rows += iter_params(AgencySettings, path + ".")
            rows += iter_params(AgencyConfig, path + ".<name>.")
        elif f.metadata:
            m = f.metadata
            default = f.default if f.default is not MISSING else f.default_factory()
            rows.append({"key": path, "unit": m["unit"], "default": default,
                         "range": _fmt_range(m) if (m["lo"] is not None or m["hi"] is not None)
                         else ("one of " + ", ".join(m["choices"]) if m.get("choices") else "-"),
                         "doc": m["doc"], "source": m["source"]})
    return rows


def agency_names(cfg: Config) -> List[str]:
    """Agency names in the fixed activation order (the order of the config)."""
    return list(agency_configs(cfg))

