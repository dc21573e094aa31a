"""The one CSV writer of every export: each text cell that a spreadsheet would run as a formula is quoted.

A cell starting with =, +, -, @, a tab or a carriage return is written with a leading apostrophe (OWASP's
advice against CSV injection), so a provider's name such as `=HYPERLINK(...)` stays text when an official
opens the file. Numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BYTE_ORDER_MARK = "\ufeff"  # spreadsheet programs then read Korean text as UTF-8


def safe_cell(value: object) -> object:
    """The value as a spreadsheet may safely read it: text that would start a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class CsvWriter:
    """Rows into CSV text through `safe_cell`; `take()` hands over what was written so far (for streaming)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)

    @property
    def size(self) -> int:
        return self._buffer.tell()

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def text(self, *, byte_order_mark: bool = True) -> str:
        return (BYTE_ORDER_MARK if byte_order_mark else "") + self.take()


def csv_text(rows: Iterable[Iterable[object]], *, byte_order_mark: bool = True) -> str:
    writer = CsvWriter()
    writer.writerows(rows)
    return writer.text(byte_order_mark=byte_order_mark)
