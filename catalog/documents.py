"""Documents attached to a service's draft: PDF or OpenDocument only, known by their content, at most 10 MB.

A file's name proves nothing: the first bytes decide what it is (`%PDF-`, or a zip whose first entry is
an uncompressed `mimetype` naming an OpenDocument type), and the name's extension must agree.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from catalog import listings, schemas
from catalog.models import Document, ServiceVersion
from catalog.storage import Storage
from market import audit
from market.auth import Principal
from market.errors import Invalid, NotFound
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
        raise _refuse(_("Choose a file to upload."))
    if not data:
        raise _refuse(_("The file is empty."))
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _refuse(_("The file is larger than %(mb)s MB.", mb=MAX_DOCUMENT_BYTES // (1024 * 1024)))
    media_type = detect_type(data)
    if media_type is None:
        raise _refuse(_("Only PDF or OpenDocument files (.pdf, .odt, .ods, .odp) are accepted, and this file's content is neither."))
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    expected = EXTENSIONS[media_type]
    if extension != expected:
        raise _refuse(_("The file's content is a .%(expected)s document but its name ends in “%(name)s”; rename it to end in .%(expected)s.",
                        expected=expected, name=("." + extension) if extension else name))
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
        name, media_type = check_file(filename, data)
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(_("The document was not attached: %(problems)s", problems=" ".join(errors.values())), errors=errors)
    key = await storage.put(data)
    document = Document(
        version_id=version.id, kind=kind, original_name=name, storage_key=key, content_type=media_type,  # type: ignore[arg-type]
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), uploaded_by_id=actor.user_id,
    )
    session.add(document)
    await session.flush()
    await audit.record(
        session, actor, "document.upload", "service", service_id,
        {"version": version.number, "document_id": document.id, "kind": kind, "name": name, "size": len(data), "sha256": document.sha256},
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
        session, actor, "document.remove", "service", service_id,
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
    service = await listings.get_service(session, version.service_id)  # type: ignore[union-attr]
    if not listings.may_see_version(viewer, service, version):  # type: ignore[arg-type]
        raise NotFound(_("No such document."))
    listings.check_not_gone(viewer, service, zone)
    try:
        data = await storage.get(document.storage_key)
    except FileNotFoundError:
        raise NotFound(_("The file of this document is missing.")) from None
    return Download(document.original_name, document.content_type, data)


async def documents_of(session: AsyncSession, version_id: int) -> list[Document]:
    return list((await session.scalars(sa.select(Document).where(Document.version_id == version_id).order_by(Document.id))).all())
