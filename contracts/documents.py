"""The contract document: rendered once when a version is sent, stored, and fingerprinted with SHA-256.

The HTML is the canonical text (what a signer is shown, byte for byte, and what the hash covers); the PDF is a
printable copy made from the same data, with its own hash. Stored files live outside the web root under keys
generated here. The PDF uses ReportLab's built-in Korean CID font (HYSMyeongJo-Medium): no font file is
shipped or embedded, and PDF readers draw the text with their own Korean font (Adobe-Korea1 collection).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from market import i18n
from market.settings import Settings
from market.templating import TEMPLATES_DIR, install_formatting

_KEY = re.compile(r"^[0-9a-f]{32}$")
DOCUMENT_TEMPLATE = "contracts/document.html"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DocumentStore:
    """Files under `root/ab/abcdef...`, written once (a temporary file renamed into place)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise FileNotFoundError(key)
        return self.root / key[:2] / key

    async def put(self, data: bytes) -> str:
        key = secrets.token_hex(16)
        await asyncio.to_thread(_write, self.path(key), data)
        return key

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    temporary = path.with_suffix(".part")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o440)  # read-only: a stored contract is never rewritten
    temporary.replace(path)


def store_for(settings: Settings) -> DocumentStore:
    return DocumentStore(settings.data_dir / "contracts")


# --- HTML -----------------------------------------------------------------------------------------


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # jinja2.ext.i18n adds this method when the environment is built; jinja2's annotations cannot declare it
    environment.install_gettext_callables(i18n.template_gettext, i18n.template_ngettext, newstyle=True)  # type: ignore[attr-defined]
    install_formatting(environment)  # amounts and days read as on every page
    environment.globals["current_language"] = i18n.current_language.get
    return environment


_env = _environment()


def render_html(context: dict[str, Any]) -> bytes:
    """The canonical document: UTF-8, Unix line ends, no trailing spaces, so the same data gives the same bytes."""
    text = _env.get_template(DOCUMENT_TEMPLATE).render(**context)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return ("\n".join(lines).strip() + "\n").encode("utf-8")


# --- PDF ------------------------------------------------------------------------------------------


def pdf_available() -> bool:
    try:
        import reportlab  # noqa: F401
    except ImportError:
        return False
    return True


# Characters the Adobe-Korea1 collection lacks, as the nearest ones it has (the fullwidth won sign is in KS X 1001).
_PDF_SAFE = str.maketrans({"₩": "￦", "–": "~", "—": "-"})


def render_pdf(sections: list[tuple[str, list[str]]], title: str) -> bytes | None:
    """A printable copy: a title and sections of paragraphs. None when ReportLab is not installed."""
    if not pdf_available():
        return None
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    font = "HYSMyeongJo-Medium"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    body = ParagraphStyle("body", fontName=font, fontSize=10, leading=14, wordWrap="CJK")
    heading = ParagraphStyle("heading", parent=body, fontSize=12, leading=18, spaceBefore=8)
    big = ParagraphStyle("title", parent=body, fontSize=16, leading=22)
    buffer = io.BytesIO()
    # invariant: no creation time or random id, so the same contract gives the same bytes
    document = SimpleDocTemplate(buffer, pagesize=A4, title=title, invariant=1, leftMargin=20 * mm, rightMargin=20 * mm)
    story: list[Any] = [Paragraph(escape(title.translate(_PDF_SAFE)), big), Spacer(1, 4 * mm)]
    for section_title, paragraphs in sections:
        story.append(Paragraph(escape(section_title.translate(_PDF_SAFE)), heading))
        for text in paragraphs:
            story.append(Paragraph(escape(text.translate(_PDF_SAFE)).replace("\n", "<br/>"), body))
    document.build(story)
    return buffer.getvalue()


@dataclass(frozen=True)
class Check:
    """The stored document compared with the fingerprint recorded when it was sent."""

    expected: str
    actual: str | None  # None: the stored file is missing

    @property
    def intact(self) -> bool:
        return self.actual == self.expected


async def check(store: DocumentStore, key: str, expected: str) -> Check:
    try:
        return Check(expected, sha256(await store.get(key)))
    except FileNotFoundError:
        return Check(expected, None)
