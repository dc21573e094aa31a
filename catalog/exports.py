"""An ended search as a file: CSV or XLSX named `YYYY-MM-DD-<project>-results`, with header rows saying
when the search ended and what it asked for, then one row per service as the snapshot froze it."""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font

from catalog.facets import unit_label
from catalog.models import Project, SnapshotItem
from market.csv_export import csv_text, safe_cell
from market.i18n import _

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class Export:
    filename: str
    media_type: str
    content: bytes

    @property
    def content_disposition(self) -> str:
        """The name for every browser: an ASCII fallback, and the exact UTF-8 name (RFC 6266)."""
        fallback = unicodedata.normalize("NFKD", self.filename).encode("ascii", "ignore").decode()
        fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", fallback)
        return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(self.filename)}"


def slug(name: str) -> str:
    """A project name fit for a file name: letters (any script) and digits, words joined by hyphens."""
    text = unicodedata.normalize("NFC", name).lower()
    text = re.sub(r"[^\w]+", "-", text).replace("_", "-")
    return re.sub(r"-{2,}", "-", text).strip("-")[:80].strip("-")


def filename(project: Project, zone: ZoneInfo, extension: str) -> str:
    ended = project.ended_at.astimezone(zone).date().isoformat() if project.ended_at else "undated"
    return f"{ended}-{slug(project.name) or f'project-{project.id}'}-results.{extension}"


cell = safe_cell  # the spreadsheet (xlsx) is guarded like the CSV


def rows(project: Project, items: list[SnapshotItem], zone: ZoneInfo) -> list[list[object]]:
    """Header rows, a blank row, the column names, then one row per service."""
    ended = project.ended_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if project.ended_at else ""
    table: list[list[object]] = [
        [_("Project"), project.name],
        [_("Search ended"), f"{ended} ({zone.key})"],
        [_("Search"), project.query_description],
        [_("Services found"), len(items)],
        [],
        [
            _("No."),
            _("Provider"),
            _("Service"),
            _("Summary"),
            _("Lowest price (KRW)"),
            _("Unit"),
            _("Page address"),
            _("Contact"),
        ],
    ]
    for item in items:
        data = item.data
        contact = data.get("contact") or {}
        table.append(
            [
                item.position,
                data.get("provider", ""),
                data.get("name", ""),
                data.get("summary", ""),
                data.get("min_price", ""),
                unit_label(data.get("min_price_unit") or ""),
                data.get("url", ""),
                " ".join(filter(None, [contact.get("email"), contact.get("phone")])),
            ]
        )
    return [[cell(value) for value in row] for row in table]


def export(project: Project, items: list[SnapshotItem], zone: ZoneInfo, fmt: str) -> Export:
    table = rows(project, items, zone)
    if fmt == "csv":
        content = csv_text(table).encode("utf-8")
    else:
        content = _xlsx(table)
    return Export(filename(project, zone, fmt), FORMATS[fmt], content)


def _xlsx(table: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Results"
    for row in table:
        sheet.append(row)
    bold = Font(bold=True)
    for cell in sheet["A"][:4]:
        cell.font = bold
    header = next(index for index, row in enumerate(table, start=1) if len(row) > 2)
    for cell in sheet[header]:
        cell.font = bold
    for letter, width in zip("ABCDEFGH", (8, 28, 32, 60, 18, 22, 40, 36), strict=True):
        sheet.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
