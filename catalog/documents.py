"""Documents attached to a service's draft: PDF or OpenDocument only, known by their content, at most 10 MB.

A file's name proves nothing: the first bytes decide what it is (`%PDF-`, or a zip whose first entry is
an uncompressed `mimetype` naming an OpenDocument type), and the name's extension must agree.

"Known by content" goes past the first bytes, because a file can be two things at once:
- A PDF must have its `%%EOF` end marker, must not also be a ZIP archive, must neither start like an
  HTML page nor hide one, a program or an archive after that marker (readers ignore those bytes, which
  makes them the place to append another file), and must carry nothing PDF/A forbids for the same reason
  we do: no JavaScript, no launch actions, no embedded files (they would let any file type through),
  no encryption (it would hide the rest from this check). Names are read with their `#xx` escapes
  decoded, inside compressed object streams too, inflating at most `MAX_PDF_OBJECT_BYTES`.
- An OpenDocument must be a well-formed package: stored or deflated entries only, none named outside
  the package (`../x`, `/x`, `C:x`, `a\\b`), none repeated, and no zip bomb: the declared sizes add up
  to at most `MAX_INFLATED_BYTES`, no large entry claims a ratio above `MAX_RATIO`, and each entry is
  inflated in small steps that stop as soon as it yields more than it declared.
Nothing is inflated beyond that bound, so a hostile upload costs bounded memory and time.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog import listings, schemas
from catalog.models import Document, ServiceVersion
from catalog.storage import Storage
from market import audit
from market.auth import Principal
from market.database import row_id
from market.errors import Invalid, NotFound, Refused
from market.i18n import _

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
PDF = "application/pdf"
OPENDOCUMENT = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
}
EXTENSIONS = {PDF: "pdf", **OPENDOCUMENT}
_ODF_HEADER = b"PK\x03\x04"
# Every entry of a package, and every compressed object stream of a PDF, together inflate to at most this.
MAX_INFLATED_BYTES = 100 * 1024 * 1024
# A PDF's object streams hold only dictionaries (pictures and pages are elsewhere): a few MB at most in practice.
MAX_PDF_OBJECT_BYTES = 32 * 1024 * 1024
# Deflated XML reaches 20-50:1; a zip bomb reaches 1000:1. Small entries are exempt (their ratio costs nothing).
MAX_RATIO = 100
_RATIO_EXEMPT_BYTES = 1024 * 1024
MAX_ENTRIES = 10_000
_STEP = 64 * 1024
_PDF_HEADER = re.compile(rb"%PDF-[12]\.[0-9]")
_PDF_TAIL = 1024
# Readers ignore what follows a PDF's last %%EOF, which makes it the place to append another file.
_FOREIGN_SIGNATURES = (
    b"MZ",
    b"\x7fELF",
    b"#!",
    b"\xca\xfe\xba\xbe",
    b"\xcf\xfa\xed\xfe",
    b"\xce\xfa\xed\xfe",
    b"PK",
    b"Rar!",
    b"7z\xbc\xaf",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"%PDF-",
)
# Looked for in the first bytes (what content sniffing reads) and after the end marker.
_HTML_MARKERS = (b"<html", b"<head", b"<body", b"<script", b"<iframe", b"<!doctype", b"<svg")
_DELIMITERS = rb"\x00\t\n\x0c\r /<>\[\]()%{}"
_PDF_NAME = re.compile(rb"/([^" + _DELIMITERS + rb"]*)")
# One pass over the file finds only the names that matter, plain or written with #xx escapes (`/J#61vaScript`).
_PDF_SUSPECT = re.compile(
    rb"/(JS|JavaScript|Launch|EmbeddedFiles?|Encrypt|ObjStm)(?![^" + _DELIMITERS + rb"])"
    rb"|/([^" + _DELIMITERS + rb"]*#[0-9A-Fa-f]{2}[^" + _DELIMITERS + rb"]*)"
)
_PDF_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# Real files have a few hundred of either at most; past these the file is built to be slow to check.
MAX_ESCAPED_NAMES = 10_000
MAX_OBJECT_STREAMS = 2_000
_DICTIONARY_WINDOW = 16 * 1024
_OBJECT_STREAM_KEYS = {b"Type", b"ObjStm", b"N", b"First", b"Length", b"Extends", b"Filter", b"FlateDecode"}
_ACTIVE_NAMES = {
    b"JS": "JavaScript",
    b"JavaScript": "JavaScript",
    b"Launch": "launch action",
    b"EmbeddedFile": "embedded file",
    b"EmbeddedFiles": "embedded file",
}


def _refuse(message: str) -> Invalid:
    return Invalid(message, errors={"file": message})


def detect_type(data: bytes) -> str | None:
    """The media type the content itself shows, or None when it is neither PDF nor OpenDocument."""
    if data.startswith(b"%PDF-"):
        return PDF
    if not data.startswith(_ODF_HEADER) or data[30:38] != b"mimetype":
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            first = archive.infolist()[0]
            if first.filename != "mimetype" or first.compress_type != zipfile.ZIP_STORED or first.file_size > 100:
                return None
            mimetype = archive.read(first).decode("ascii").strip()
    except (zipfile.BadZipFile, IndexError, UnicodeDecodeError, KeyError, OSError, EOFError, NotImplementedError):
        return None
    return mimetype if mimetype in OPENDOCUMENT else None


class _Refused(Exception):
    """A content check failed; the message names the problem."""


def _unescape(name: bytes) -> bytes:
    return _PDF_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), name)


def _suspect_names(data: bytes) -> Iterator[tuple[bytes, int]]:
    """The names in `data` that may matter, `#xx` escapes decoded, with their end offsets."""
    escaped = 0
    for match in _PDF_SUSPECT.finditer(data):
        if match.group(1) is not None:
            yield match.group(1), match.end()
            continue
        escaped += 1
        if escaped > MAX_ESCAPED_NAMES:
            raise _Refused(_("The PDF hides too many of its names behind escapes to be checked."))
        yield _unescape(match.group(2)), match.end()


def _inflate(raw: memoryview, wbits: int) -> Iterator[bytes]:
    """The inflated pieces of `raw`, each at most `_STEP` bytes: the caller stops whenever it has seen enough."""
    inflater = zlib.decompressobj(wbits)
    for offset in range(0, len(raw), _STEP):
        piece = inflater.decompress(raw[offset : offset + _STEP], _STEP)
        yield piece
        while inflater.unconsumed_tail and not inflater.eof:
            yield inflater.decompress(inflater.unconsumed_tail, _STEP)
        if inflater.eof:
            return


def _object_stream(data: bytes, start: int, budget: int) -> bytes:
    """The decoded object stream whose dictionary holds the name ending at `start`; at most `budget` bytes."""
    keyword = data.find(b"stream", start, start + _DICTIONARY_WINDOW)
    if keyword < 0:
        raise _Refused(_("The PDF is damaged: an object stream has no data."))
    window = max(start - _DICTIONARY_WINDOW, 0)
    opening = data.rfind(b"obj", window, start)
    filters = {_unescape(match.group(1)) for match in _PDF_NAME.finditer(data, max(opening, window), keyword)}
    if not filters & {b"Filter"}:
        return b""  # not compressed: its bytes were read with the rest of the file
    # Only plain Flate: another filter or a predictor would show this check different bytes than a reader sees.
    if b"FlateDecode" not in filters or filters - _OBJECT_STREAM_KEYS:
        raise _Refused(
            _("The PDF uses a compression for its objects that cannot be checked; save it as PDF/A and try again.")
        )
    begin = keyword + len(b"stream")
    begin += 2 if data[begin : begin + 2] == b"\r\n" else 1
    parts: list[bytes] = []
    size = 0
    try:
        for piece in _inflate(memoryview(data)[begin:], zlib.MAX_WBITS):
            size += len(piece)
            if size > budget:
                raise _Refused(_("The PDF's compressed objects inflate to more than can be checked."))
            parts.append(piece)
    except zlib.error:
        raise _Refused(_("The PDF is damaged: an object stream cannot be inflated.")) from None
    return b"".join(parts)


def _check_pdf(data: bytes) -> None:
    if not _PDF_HEADER.match(data):
        raise _Refused(_("The file starts like a PDF but has no valid PDF version header."))
    end = data.rfind(b"%%EOF")
    if end < 0:
        raise _Refused(
            _(
                "The file starts like a PDF but does not end like one (it has no end-of-file marker); it may be another kind of file."
            )
        )
    head, tail = data[:_PDF_TAIL].lower(), data[end + 5 :]
    if any(marker in head for marker in _HTML_MARKERS) or any(marker in tail.lower() for marker in _HTML_MARKERS):
        raise _Refused(_("The file starts like a PDF but contains an HTML page; it is refused."))
    if zipfile.is_zipfile(io.BytesIO(data)) or b"PK\x03\x04" in tail:
        raise _Refused(_("The file is both a PDF and a ZIP archive; it is refused."))
    if tail.lstrip(b" \t\r\n\x00").startswith(_FOREIGN_SIGNATURES):
        raise _Refused(
            _("The file is a PDF with another file (a program or an archive) appended after its end; it is refused.")
        )
    budget, streams = MAX_PDF_OBJECT_BYTES, 0
    chunks = [data]
    while chunks:
        chunk = chunks.pop()
        for name, end in _suspect_names(chunk):
            if name in _ACTIVE_NAMES:
                raise _Refused(
                    _(
                        "The PDF contains active or hidden content (%(what)s), which is not accepted; save it as plain PDF (PDF/A) and try again.",
                        what=_ACTIVE_NAMES[name],
                    )
                )
            if name == b"Encrypt":
                raise _Refused(
                    _(
                        "The PDF is encrypted, so its content cannot be checked; save it without a password or restrictions."
                    )
                )
            if name == b"ObjStm" and chunk is data:
                streams += 1
                if streams > MAX_OBJECT_STREAMS:
                    raise _Refused(_("The PDF has too many object streams to be checked."))
                inflated = _object_stream(data, end, budget)
                budget -= len(inflated)
                chunks.append(inflated)


def _check_package(data: bytes) -> None:
    """A well-formed OpenDocument package that inflates to a bounded size; _Refused otherwise."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise _Refused(_("The document has more than %(n)s parts.", n=MAX_ENTRIES))
        seen: set[str] = set()
        for entry in entries:
            name = entry.orig_filename
            parts = name.split("/")
            if (
                not name
                or name.startswith("/")
                or "\\" in name
                or ".." in parts
                or ":" in parts[0]
                or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
            ):
                raise _Refused(
                    _(
                        "The document contains a part named “%(name)s”, which points outside the document.",
                        name=name[:100],
                    )
                )
            if name in seen:
                raise _Refused(_("The document contains the part “%(name)s” twice.", name=name[:100]))
            seen.add(name)
            if entry.flag_bits & 0x1 or entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Refused(_("The document is encrypted or compressed in a way OpenDocument does not use."))
            if entry.file_size > _RATIO_EXEMPT_BYTES and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
                raise _Refused(
                    _(
                        "The document is a zip bomb: a part claims to inflate more than %(ratio)s times.",
                        ratio=MAX_RATIO,
                    )
                )
        declared = sum(entry.file_size for entry in entries)
        if declared > MAX_INFLATED_BYTES:
            raise _Refused(
                _(
                    "The document is a zip bomb: it would inflate to more than %(mb)s MB.",
                    mb=MAX_INFLATED_BYTES // (1024 * 1024),
                )
            )
        for entry in entries:
            _inflate_entry(data, entry)


def _inflate_entry(data: bytes, entry: zipfile.ZipInfo) -> None:
    """Inflate one entry in small steps, never past its declared size, and check its size and checksum."""
    header = data[entry.header_offset : entry.header_offset + 30]
    if len(header) < 30 or header[:4] != _ODF_HEADER:
        raise _Refused(_("The document is damaged (a part cannot be found)."))
    start = entry.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    raw = memoryview(data)[start : start + entry.compress_size]
    if len(raw) != entry.compress_size:
        raise _Refused(_("The document is damaged (a part is cut short)."))
    if entry.compress_type == zipfile.ZIP_STORED:
        size, crc = len(raw), zlib.crc32(raw)
    else:
        size = crc = 0
        try:
            for piece in _inflate(raw, -zlib.MAX_WBITS):
                size += len(piece)
                if size > entry.file_size:
                    raise _Refused(_("The document is a zip bomb: a part inflates to more than it declares."))
                crc = zlib.crc32(piece, crc)
        except zlib.error:
            raise _Refused(_("The document is damaged (a part cannot be inflated).")) from None
    if size != entry.file_size or crc != entry.CRC:
        raise _Refused(_("The document is damaged (a part does not match its checksum)."))


def clean_name(filename: str) -> str:
    """The file's own name without any folder, control characters or excess length."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C").strip(" .")
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 200 - len(extension) - 1] + dot + extension) if dot and len(extension) <= 10 else name[:200]
    return name


def check_file(filename: str, data: bytes) -> tuple[str, str]:
    """(clean name, media type) of an acceptable document; Invalid naming the problem otherwise."""
    name = clean_name(filename)
    if not name:
        raise _refuse(
            _("Choose a file to upload.")
            if not data
            else _("The file's name is not usable; rename the file and try again.")
        )
    if not data:
        raise _refuse(_("The file is empty."))
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _refuse(_("The file is larger than %(mb)s MB.", mb=MAX_DOCUMENT_BYTES // (1024 * 1024)))
    if data.startswith(_ODF_HEADER) and data.count(b"PK\x01\x02") > MAX_ENTRIES:  # before zipfile lists them all
        raise _refuse(_("The document has more than %(n)s parts.", n=MAX_ENTRIES))
    media_type = detect_type(data)
    if media_type is None:
        raise _refuse(
            _(
                "Only PDF or OpenDocument files (.pdf, .odt, .ods, .odp) are accepted, and this file's content is neither."
            )
        )
    try:
        _check_pdf(data) if media_type == PDF else _check_package(data)
    except _Refused as exc:
        raise _refuse(str(exc)) from None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError):
        raise _refuse(_("The document is damaged and cannot be read.")) from None
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    expected = EXTENSIONS[media_type]
    if extension != expected:
        raise _refuse(
            _(
                "The file's content is a .%(expected)s document but its name ends in “%(name)s”; rename it to end in .%(expected)s.",
                expected=expected,
                name=("." + extension) if extension else name,
            )
        )
    return name, media_type


async def upload(
    session: AsyncSession, actor: Principal, storage: Storage, service_id: int, kind: str, filename: str, data: bytes
) -> Document:
    """Attach a document to the service's open draft."""
    _service, version = await listings.open_draft(session, actor, service_id)
    errors: dict[str, str] = {}
    if kind not in schemas.DOCUMENT_KINDS:
        errors["kind"] = _("Choose what the document is.")
    try:
        # Off the event loop: checking a 10 MB package inflates up to MAX_INFLATED_BYTES.
        name, media_type = await asyncio.to_thread(check_file, filename, data)
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(
            _("The document was not attached: %(problems)s", problems=" ".join(errors.values())), errors=errors
        )
    key = await storage.put(data)
    document = Document(
        version_id=row_id(version),
        kind=kind,
        original_name=name,
        storage_key=key,
        content_type=media_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by_id=actor.user_id,
    )
    session.add(document)
    await session.flush()
    await audit.record(
        session,
        actor,
        "document.upload",
        "service",
        service_id,
        {
            "version": version.number,
            "document_id": document.id,
            "kind": kind,
            "name": name,
            "size": len(data),
            "sha256": document.sha256,
        },
    )
    return document


async def remove(session: AsyncSession, actor: Principal, service_id: int, document_id: int) -> Document:
    """Take a document off the open draft (its bytes stay with any other version that has them)."""
    _service, version = await listings.open_draft(session, actor, service_id)
    document = await session.get(Document, document_id)
    if document is None or document.version_id != version.id:
        raise NotFound(_("No such document."))
    await session.delete(document)
    await session.flush()
    await audit.record(
        session,
        actor,
        "document.remove",
        "service",
        service_id,
        {"version": version.number, "document_id": document_id, "name": document.original_name},
    )
    return document


@dataclass(frozen=True)
class Download:
    name: str
    media_type: str
    data: bytes


async def download(
    session: AsyncSession, viewer: Principal | None, storage: Storage, document_id: int, zone: ZoneInfo | None = None
) -> Download:
    """The document's bytes, for those who may see its version (never another organisation's draft)."""
    document = await session.get(Document, document_id)
    if document is None:
        raise NotFound(_("No such document."))
    version = await session.get(ServiceVersion, document.version_id)
    assert version is not None  # document.version_id is a foreign key
    service = await listings.get_service(session, version.service_id)
    if not await listings.may_see_version(session, viewer, service, version):
        raise Refused(_("No such document.")) if viewer is not None else NotFound(_("No such document."))
    listings.check_not_gone(viewer, service, zone)
    try:
        data = await storage.get(document.storage_key)
    except FileNotFoundError:
        raise NotFound(_("The file of this document is missing.")) from None
    return Download(document.original_name, document.content_type, data)


async def documents_of(session: AsyncSession, version_id: int) -> list[Document]:
    return list(
        (
            await session.scalars(
                sa.select(Document).where(col(Document.version_id) == version_id).order_by(col(Document.id))
            )
        ).all()
    )
