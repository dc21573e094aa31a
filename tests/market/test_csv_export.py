"""One CSV writer (`market.csv_export`) with one formula guard, used by every export of the app."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from committee.meetings import minutes_csv
from market.csv_export import CsvWriter, csv_text, safe_cell
from tests.helpers import YEAR

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://evil.example","click")', "+1+2", "-2+3", "@SUM(A1)", "\tTab", "\rReturn"]
)
def test_text_that_would_start_a_formula_gets_a_leading_apostrophe(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["Cloud Drive", "", "a=b", "클라우드", 12, -5, None])
def test_other_values_are_written_as_they_are(value: object) -> None:
    assert safe_cell(value) == value


def test_the_writer_guards_every_cell_and_starts_with_a_byte_order_mark() -> None:
    text = csv_text([["name", "price"], ["=cmd|' /C calc'!A0", -1200]])
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text.lstrip("\ufeff")))) == [["name", "price"], ["'=cmd|' /C calc'!A0", "-1200"]]


def test_take_hands_over_what_was_written_for_streaming() -> None:
    writer = CsvWriter()
    writer.writerow(["@first"])
    assert writer.take() == "'@first\r\n" and writer.size == 0


def test_the_committee_minutes_quote_a_providers_formula() -> None:
    record = {
        "title": '=HYPERLINK("http://evil.example")',
        "held_on": f"{YEAR}-06-15",
        "status": "closed",
        "quorum": 3,
        "attendees": [{"id": 1, "name": "@Member"}],
        "items": [
            {
                "case_id": 1,
                "kind": "new",
                "provider_name": '=HYPERLINK("http://evil.example","Open")',
                "service_name": "+Mail",
                "version_number": 1,
                "computed_outcome": "certify",
                "outcome": "certify",
                "confirmation": "confirmed",
                "reason": "-",
                "certificate": "C-1",
            }
        ],
    }
    rows = list(csv.reader(io.StringIO(minutes_csv(record))))
    cells = [cell for row in rows for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert '\'=HYPERLINK("http://evil.example","Open")' in cells and "'+Mail" in cells and "'@Member" in cells


def test_no_export_writes_csv_but_through_the_one_writer() -> None:
    writers = [
        str(path.relative_to(ROOT))
        for package in ("market", "catalog", "committee", "contracts")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"\bcsv\.(writer|DictWriter)\(", path.read_text()) and path != ROOT / "market" / "csv_export.py"
    ]
    assert writers == []
