"""The advisory locks that keep one writer at a time on a committee record (PostgreSQL; SQLite writes one at a time
anyway). The keys are fixed numbers so that every process takes the same lock for the same record."""

from __future__ import annotations

CASE_BASE = 7_400_000_000
CASE_OPENING = CASE_BASE  # one submission opens (or reopens) a case at a time: at most one open case a service
CERTIFICATE_NUMBER = 7_300_000_001  # certificate numbers are issued in sequence, without gaps


def case(case_id: int) -> int:
    return CASE_BASE + case_id


def certificate(certificate_id: int) -> int:
    return CASE_BASE - certificate_id


def meeting(meeting_id: int) -> int:
    return CASE_BASE - 1_000_000 - meeting_id
