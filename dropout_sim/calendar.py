"""The school calendar: month 0 is the first focal cohort's first day of Vg1 (August); normert tid is 60 months.

Model month ``t`` counts from the first focal cohort's first day of Vg1 (warm-up months are
negative); a student's own month counts from their own entry cohort's first day of Vg1. The school year runs August-June;
July is the summer break. Progression is decided in June; re-entry into school happens at
a term start (August or January).
"""

from __future__ import annotations

NORMERT_TID_MONTHS = 60
"""Five years from the first day of Vg1: the headline completion window (brief section 1)."""

AUGUST, DECEMBER, JANUARY, JUNE, JULY = 0, 4, 5, 10, 11
"""Months of the school year (0 = August)."""

CALENDAR_NAMES = ("Aug", "Sep", "Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul")


def month_of_school_year(t: int) -> int:
    """0 = August ... 10 = June, 11 = July."""
    return t % 12


def school_year(t: int) -> int:
    """School years since month 0 (0 in the first focal cohort's Vg1 year; negative in the warm-up)."""
    return t // 12


def is_june(t: int) -> bool:
    """Progression, diploma and Vg2 -> apprenticeship decisions are taken in June."""
    return t % 12 == JUNE


def is_summer(t: int) -> bool:
    """July: no teaching, so no school-based learning or absence."""
    return t % 12 == JULY


def is_august(t: int) -> bool:
    """A new school year (and a new level) starts."""
    return t % 12 == AUGUST


def is_term_start(t: int) -> bool:
    """Returners can (re-)enter school in August or January."""
    return t % 12 in (AUGUST, JANUARY)


def label(t: int) -> str:
    """Human label, e.g. ``'Y1 Aug'`` for month 0."""
    return f"Y{t // 12 + 1} {CALENDAR_NAMES[t % 12]}"
