"""Hostile uploads through the page and the API: wrong magic bytes, polyglots, zip bombs, path traversal
inside packages and in file names, and bodies far over the limit. Every one is refused with a message
naming the problem, and leaves no Document row, no stored file and no audit event behind."""

from __future__ import annotations

import cProfile
import gc
import html
import io
import pstats
import random
import re
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from catalog import documents
from catalog.controllers_listings import UPLOAD_BODY_LIMIT
from catalog.documents import MAX_DOCUMENT_BYTES, MAX_INFLATED_BYTES
from catalog.models import Document
from market.errors import Invalid
from market.models import Organisation
from tests.catalog.listing_factories import (  # noqa: F401  (catalog_alone is a fixture)
    EXECUTABLE,
    ODT,
    PDF,
    api_token,
    catalog_alone,
    draft_service,
    opendocument,
)
from tests.helpers import audit_actions, count, make_organisation, make_user

pytestmark = pytest.mark.usefixtures("catalog_alone")

BOUNDARY = "hostile-upload-boundary"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"

Send = Callable[[bytes, bytes], Awaitable[httpx.Response]]


def _multipart(
    fields: dict[str, str], filename: bytes, content: bytes, content_type: str = "application/octet-stream"
) -> bytes:
    """A multipart body written by hand, so the file name reaches the server byte for byte (a client would escape it)."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + f'"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    return b"".join(parts)


@pytest.fixture(params=["page", "api"])
async def upload(request, web, settings) -> tuple[str, int, Send, dict[str, str]]:
    """(route, service id, send(file name, content), API headers) for a provider's own draft, through the page or the API."""
    if request.param == "page":
        user = await web.login_as("provider")
        async with web.sessions() as session:
            organisation = await session.get(Organisation, user.organisation_id)
        service_id = await draft_service(web.sessions, settings, user, organisation, with_document=False)

        async def send(name: bytes, content: bytes) -> httpx.Response:
            token = await web.csrf(f"/services/{service_id}/documents")
            body = _multipart({"_csrf_token": token, "kind": "service_definition"}, name, content)
            return await web.client.post(
                f"/services/{service_id}/documents",
                content=body,
                follow_redirects=False,
                headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            )

        headers: dict[str, str] = {}
    else:
        organisation = await make_organisation(web.sessions, "provider")
        user = await make_user(web.sessions, organisation)
        service_id = await draft_service(web.sessions, settings, user, organisation, with_document=False)
        headers = await api_token(web.sessions, user)

        async def send(name: bytes, content: bytes) -> httpx.Response:
            body = _multipart({"kind": "service_definition"}, name, content)
            return await web.client.post(
                f"/api/services/{service_id}/documents",
                content=body,
                headers={**headers, "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            )

    return request.param, service_id, send, headers


def _message(route: str, response: httpx.Response) -> str:
    if route == "api":
        body = response.json()
        return " ".join([body.get("detail", ""), *body.get("errors", {}).values()])
    return html.unescape(response.text)


def _stored_files(settings) -> list:
    root = settings.data_dir / "documents"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


async def _refused(upload, web, settings, name: bytes, content: bytes, message: str, status: int = 422) -> None:
    route, _service_id, send, _headers = upload
    response = await send(name, content)
    assert response.status_code == status, response.text[:2000]
    assert message in _message(route, response), _message(route, response)[:3000]
    assert await count(web.sessions, Document) == 0
    assert _stored_files(settings) == []
    assert not [action for action in await audit_actions(web.sessions) if action.startswith("document.")]


# --- files that are not what their names say ------------------------------------------------------------

NEITHER = "this file's content is neither"


@pytest.mark.parametrize(
    "name, content",
    [
        (b"definition.pdf", EXECUTABLE),  # a Windows program renamed .pdf
        (b"definition.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 57),  # a Linux program renamed .pdf
        (b"terms.odt", PNG),  # a picture renamed .odt
        (b"terms.odt", b"<html><script>alert(1)</script></html>"),
        (b"terms.odt", opendocument(mimetype_first=False)),  # a zip whose first entry is not `mimetype`
        (b"terms.odt", opendocument("application/x-msdownload")),
    ],
    ids=["exe-as-pdf", "elf-as-pdf", "png-as-odt", "html-as-odt", "mimetype-not-first", "foreign-mimetype"],
)
async def test_wrong_magic_bytes_are_refused(upload, web, settings, name, content) -> None:
    await _refused(upload, web, settings, name, content, NEITHER)


# --- polyglots: a %PDF- header in front of something else ------------------------------------------------


def _pdf(*objects: bytes, tail: bytes = b"") -> bytes:
    """A small PDF with the given objects between its header and its trailer."""
    body = b"".join(b"%d 0 obj\n%s\nendobj\n" % (number, text) for number, text in enumerate(objects, start=1))
    return b"%PDF-1.7\n" + body + b"trailer\n<</Root 1 0 R>>\n%%EOF\n" + tail


def _object_stream(text: bytes) -> bytes:
    """Objects hidden in a compressed object stream (PDF 1.5), where a byte scan of the file cannot see them."""
    packed = zlib.compress(b"2 0 " + text)
    return b"<</Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d>>\nstream\n%s\nendstream" % (
        len(packed),
        packed,
    )


def _zip_with_comment(comment: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.exe", EXECUTABLE)
        archive.comment = comment
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"%PDF-1.7\n" + opendocument(), "does not end like one"),  # a zip behind a PDF header
        (b"%PDF-1.7\n" + EXECUTABLE, "does not end like one"),
        (PDF + _zip_with_comment(b""), "both a PDF and a ZIP archive"),  # a PDF with a zip appended
        (PDF + _zip_with_comment(b"%%EOF"), "both a PDF and a ZIP archive"),  # ... whose comment ends it like a PDF
        (
            _pdf(b"<</Type /Catalog>>", b"<html><body><script>alert(document.cookie)</script></body></html>"),
            "contains an HTML page",
        ),
        (PDF + b"<!DOCTYPE html><script>alert(1)</script>", "contains an HTML page"),
        (PDF + EXECUTABLE, "appended after its end"),
        (PDF + b"\n#!/bin/sh\nrm -rf ~\n", "appended after its end"),
        (b"%PDF-x\n%%EOF", "no valid PDF version header"),
    ],
    ids=[
        "zip-behind-header",
        "exe-behind-header",
        "zip-appended",
        "zip-appended-ending-in-eof",
        "html-inside",
        "html-appended",
        "exe-appended",
        "script-appended",
        "bad-version",
    ],
)
async def test_polyglot_pdfs_are_refused(upload, web, settings, content, message) -> None:
    await _refused(upload, web, settings, b"definition.pdf", content, message)


@pytest.mark.parametrize(
    "objects, message",
    [
        ((b"<</Type /Catalog /OpenAction 2 0 R>>", b"<</S /JavaScript /JS (app.alert(1))>>"), "(JavaScript)"),
        (
            (b"<</Type /Catalog /OpenAction 2 0 R>>", b"<</S /J#61vaScript /J#53 (app.alert(1))>>"),
            "(JavaScript)",
        ),  # escaped names
        (
            (b"<</Type /Catalog /OpenAction 2 0 R>>", b"<</S /Launch /F (cmd.exe) /Win <</F (cmd.exe)>>>>"),
            "(launch action)",
        ),
        (
            (
                b"<</Type /Catalog /Names <</EmbeddedFiles 2 0 R>>>>",
                b"<</Type /EmbeddedFile /Length 3>>\nstream\nMZ!\nendstream",
            ),
            "(embedded file)",
        ),
        (
            (b"<</Type /Catalog /OpenAction 2 0 R>>", _object_stream(b"<</S /JavaScript /JS (app.alert(1))>>")),
            "(JavaScript)",
        ),
        (
            (
                b"<</Type /Catalog /OpenAction 2 0 R>>",
                _object_stream(b"<</S /JavaScript>>").replace(b"/Length", b"/DecodeParms <</Predictor 12>> /Length"),
            ),
            "cannot be checked",
        ),
        ((b"<</Type /Catalog>>", b"<</Filter /Standard /V 2 /R 3>>", b"<</Encrypt 2 0 R>>"), "is encrypted"),
    ],
    ids=[
        "javascript",
        "escaped-javascript",
        "launch",
        "embedded-file",
        "javascript-in-object-stream",
        "object-stream-with-predictor",
        "encrypted",
    ],
)
async def test_pdfs_with_active_or_hidden_content_are_refused(upload, web, settings, objects, message) -> None:
    await _refused(upload, web, settings, b"definition.pdf", _pdf(*objects), message)


async def test_an_object_stream_bomb_is_refused_without_inflating_it(upload, web, settings) -> None:
    inflater = zlib.compressobj(9)
    packed = (
        b"".join(inflater.compress(b"\x00" * (1024 * 1024)) for _ in range(40)) + inflater.flush()
    )  # 40 MB in ~40 kB
    stream = b"<</Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d>>\nstream\n%s\nendstream" % (
        len(packed),
        packed,
    )
    await _refused(
        upload,
        web,
        settings,
        b"definition.pdf",
        _pdf(b"<</Type /Catalog>>", stream),
        "inflate to more than can be checked",
    )


# --- OpenDocument packages: zip bombs and entries named outside the package ------------------------------


def _package(*entries: tuple[str, bytes], mimetype: str = ODT) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate names some cases need
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _streamed_package(name: str, megabytes: int, entries: int = 1) -> bytes:
    """A package whose entries inflate to `megabytes` MB of zeros each, written without holding them in memory."""
    buffer = io.BytesIO()
    zero = b"\x00" * (1024 * 1024)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), ODT, compress_type=zipfile.ZIP_STORED)
        for index in range(entries):
            info = zipfile.ZipInfo(f"{name}{index}" if entries > 1 else name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as entry:
                for _ in range(megabytes):
                    entry.write(zero)
    return buffer.getvalue()


def _lying_package(declared: int, real_megabytes: int) -> bytes:
    """A package whose content.xml declares `declared` bytes (with a matching checksum of that much) but inflates to far more."""
    zero = b"\x00" * (1024 * 1024)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    packed = b"".join(deflater.compress(zero) for _ in range(real_megabytes)) + deflater.flush()
    data = bytearray(_package(("content.xml", b"x")))
    # Rewrite content.xml: its local header and central entry get the lying size and a checksum of that prefix.
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("content.xml")
    start = info.header_offset + 30 + len(b"content.xml")
    old_end = start + info.compress_size
    data[start:old_end] = packed
    crc = zlib.crc32(b"\x00" * declared).to_bytes(4, "little")
    local = info.header_offset
    data[local + 14 : local + 26] = crc + len(packed).to_bytes(4, "little") + declared.to_bytes(4, "little")
    central = next(
        m.start()
        for m in re.finditer(rb"PK\x01\x02", bytes(data))
        if data[m.start() + 46 : m.start() + 57] == b"content.xml"
    )
    data[central + 16 : central + 28] = crc + len(packed).to_bytes(4, "little") + declared.to_bytes(4, "little")
    shift = len(packed) - info.compress_size
    end = data.rindex(b"PK\x05\x06")
    offset = int.from_bytes(data[end + 16 : end + 20], "little")
    data[end + 16 : end + 20] = (offset + shift).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda: _streamed_package("content.xml", 20), "inflate more than 100 times"),  # 20 MB of zeros in ~20 kB
        (
            lambda: _streamed_package("Pictures/", 1, entries=120),
            "inflate to more than 100 MB",
        ),  # each small, together too big
        (lambda: _lying_package(512 * 1024, 64), "inflates to more than it declares"),  # says 512 kB, holds 64 MB
    ],
    ids=["ratio", "declared-total", "lying-size"],
)
async def test_opendocument_zip_bombs_are_refused(upload, web, settings, content, message) -> None:
    await _refused(upload, web, settings, b"terms.odt", content(), message)


@pytest.mark.parametrize(
    "entry",
    [
        "../../x",
        "../../../../etc/cron.d/evil",
        "/etc/passwd",
        "C:/Windows/evil.dll",
        "Pictures/..\\..\\evil",
        "Pictures/../../evil",
        "content\x01.xml",
    ],
)
async def test_opendocument_entries_named_outside_the_package_are_refused(upload, web, settings, entry) -> None:
    await _refused(
        upload,
        web,
        settings,
        b"terms.odt",
        _package(("content.xml", b"<x/>"), (entry, b"owned")),
        "points outside the document",
    )


async def test_opendocument_entries_named_twice_are_refused(upload, web, settings) -> None:
    content = _package(("content.xml", b"<x/>"), ("content.xml", b"<other/>"))
    await _refused(upload, web, settings, b"terms.odt", content, "twice")


async def test_an_opendocument_with_a_damaged_entry_is_refused(upload, web, settings) -> None:
    content = bytearray(_package(("content.xml", b"<office:document-content/>" * 50)))
    content[content.index(b"content.xml") + len(b"content.xml") + 4] ^= 0xFF  # one flipped byte in the deflated data
    await _refused(upload, web, settings, b"terms.odt", bytes(content), "damaged")


def test_checking_a_bomb_costs_bounded_memory() -> None:
    """A package whose entry declares 512 kB but inflates to 200 MB: the check stops after about 512 kB."""
    bomb = _lying_package(512 * 1024, 200)
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:  # the standard library stops at the declared size and is fooled
        assert archive.testzip() is None and len(archive.read("content.xml")) == 512 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(Invalid) as refused:
            documents.check_file("terms.odt", bomb)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "inflates to more than it declares" in refused.value.errors["file"]
    assert peak < 2 * 1024 * 1024, peak


# --- file names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shown",
    [
        (b"../../../etc/passwd.pdf", "passwd.pdf"),
        (b"..\\..\\windows\\system32\\definition.pdf", "definition.pdf"),
        ("C:\\Users\\kim\\서비스 정의서.pdf".encode(), "서비스 정의서.pdf"),
        (b"defi\x01ni\ttion\x1b[31m\x7f.pdf", "definition[31m.pdf"),
        (
            "invoice\u202efdp.exe\u200b.pdf".encode(),
            "invoicefdp.exe.pdf",
        ),  # a right-to-left override would show "…exe.pdf" reversed
        (b"." * 5 + b"/" + b"a" * 1000 + b".pdf", "a" * 196 + ".pdf"),
    ],
    ids=["dotdot", "backslashes", "windows-path", "control-characters", "bidi-override", "too-long"],
)
async def test_file_names_are_cleaned_and_never_reach_the_file_system(upload, web, settings, name, shown) -> None:
    route, _service_id, send, _headers = upload
    response = await send(name, PDF)
    assert response.status_code == (303 if route == "page" else 201), response.text[:2000]
    async with web.sessions() as session:
        document = (await session.scalars(sa.select(Document))).one()
    assert document.original_name == shown
    assert len(document.original_name) <= 200
    files = _stored_files(settings)
    assert [path.name for path in files] == [document.storage_key] and re.fullmatch(
        r"[0-9a-f]{32}", document.storage_key
    )
    assert files[0].parent.parent == settings.data_dir / "documents"
    assert [action for action in await audit_actions(web.sessions) if action.startswith("document.")] == [
        "document.upload"
    ]


@pytest.mark.parametrize("name", [b"../", b"..\\..\\", b"\x01\x02/..", b"   ."])
async def test_a_file_name_with_nothing_left_after_cleaning_is_refused(upload, web, settings, name) -> None:
    await _refused(upload, web, settings, name, PDF, "name is not usable")


# --- valid files still go through ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content", [(b"definition.pdf", PDF), (b"terms.odt", opendocument())], ids=["pdf", "odt"]
)
async def test_valid_documents_still_upload(upload, web, settings, name, content) -> None:
    route, _service_id, send, _headers = upload
    response = await send(name, content)
    assert response.status_code == (303 if route == "page" else 201), response.text[:2000]
    assert await count(web.sessions, Document) == 1 and len(_stored_files(settings)) == 1


def test_a_realistic_opendocument_within_the_bounds_passes() -> None:
    """Stored pictures and deflated XML at ordinary ratios, 9 MB in all: none of the bomb checks trips."""
    rng = random.Random(6)
    words = [rng.randbytes(rng.randint(2, 9)).hex().encode() for _ in range(5000)]
    text = (
        b"<text:p>" + b" ".join(rng.choice(words) for _ in range(400_000)) + b"</text:p>"
    )  # about 5 MB, deflates 2-3:1
    pictures = [(f"Pictures/{index}.png", rng.randbytes(512 * 1024)) for index in range(8)]
    content = _package(("content.xml", text), *pictures)
    assert len(content) < MAX_DOCUMENT_BYTES
    assert documents.check_file("definition.odt", content) == ("definition.odt", ODT)


# --- a body far over the limit ---------------------------------------------------------------------------


def _stream_to_app(
    client: Any, path: str, headers: list[tuple[bytes, bytes]], fields: dict[str, str], size: int, announce_length: bool
) -> tuple[int, bytes, int, int]:
    """POST a multipart body of `size` bytes straight to the ASGI app, generated piece by piece so the test itself
    never holds it. Returns (status, response body, bytes the app pulled, peak bytes allocated meanwhile)."""
    head = _multipart(fields, b"huge.pdf", b"")[: -len(f"\r\n--{BOUNDARY}--\r\n")]
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    filler = size - len(head) - len(tail)
    piece = b"0" * (64 * 1024)
    state = {"sent": 0, "phase": 0}

    async def receive() -> dict[str, Any]:
        if state["phase"] == 0:
            state["phase"], state["left"] = 1, filler
            state["sent"] += len(head)
            return {"type": "http.request", "body": head, "more_body": True}
        if state["left"] > 0:
            chunk = piece[: min(len(piece), state["left"])]
            state["left"] -= len(chunk)
            state["sent"] += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}
        if state["phase"] == 1:
            state["phase"] = 2
            state["sent"] += len(tail)
            return {"type": "http.request", "body": tail, "more_body": False}
        return {"type": "http.disconnect"}

    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    all_headers = [
        (b"host", b"testserver.local"),
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
        *headers,
    ]
    if announce_length:
        all_headers.append((b"content-length", str(size).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": all_headers,
        "client": ("testclient", 50000),
        "server": ("testserver.local", 80),
        "extensions": {},
    }
    tracemalloc.start()
    try:
        with client.portal() as portal:  # the app's loop, where its database pool lives
            portal.call(client.app, scope, receive, send)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return answer["status"], answer["body"], state["sent"], peak


# Litestar's multipart parser leaves the half-written upload's spooled temporary file for the garbage collector
# to close when the limit stops a chunked body (an unlinked file: nothing stays on disk).
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function SpooledTemporaryFile.__del__:pytest.PytestUnraisableExceptionWarning"
)
@pytest.mark.filterwarnings("ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("announce_length", [True, False], ids=["content-length", "chunked"])
async def test_a_body_far_over_the_limit_is_refused_with_413_in_bounded_memory(
    upload, web, settings, announce_length
) -> None:
    """30 MB sent; the app must answer 413 having read at most the limit, and allocate far less than the body."""
    route, service_id, _send, api_headers = upload
    size = 30 * 1024 * 1024
    if route == "page":
        token = await web.csrf(f"/services/{service_id}/documents")
        cookie = "; ".join(f"{name}={value}" for name, value in web.client.cookies.items())
        path, headers, fields = (
            f"/services/{service_id}/documents",
            [(b"cookie", cookie.encode())],
            {"_csrf_token": token, "kind": "service_definition"},
        )
    else:
        path, fields = f"/api/services/{service_id}/documents", {"kind": "service_definition"}
        headers = [(b"authorization", api_headers["Authorization"].encode())]
    status, body, pulled, peak = _stream_to_app(web.client, path, headers, fields, size, announce_length)
    gc.collect()  # close that file now, inside this test (the wrapper, then the file under it)
    gc.collect()
    assert status == 413, body[:2000]
    assert "larger than this service accepts" in html.unescape(body.decode())
    if announce_length:
        assert pulled < 64 * 1024, pulled  # refused on the announced length, before the body is read
    else:
        assert pulled <= UPLOAD_BODY_LIMIT + 128 * 1024, pulled  # stopped at the limit, not at 30 MB
    assert peak < 4 * 1024 * 1024, peak  # the multipart parser spools the file to disk: memory stays far under the body
    assert await count(web.sessions, Document) == 0
    assert _stored_files(settings) == []
    assert not [action for action in await audit_actions(web.sessions) if action.startswith("document.")]


async def test_a_file_just_over_10_mb_inside_the_body_limit_is_refused_by_the_check(upload, web, settings) -> None:
    content = PDF[:-6] + b"%" + b"0" * (MAX_DOCUMENT_BYTES - len(PDF) + 8) + b"\n%%EOF\n"
    assert MAX_DOCUMENT_BYTES < len(content) < UPLOAD_BODY_LIMIT
    await _refused(upload, web, settings, b"big.pdf", content, "larger than 10 MB")


def test_the_inflation_bound_is_well_above_the_file_limit() -> None:
    assert MAX_INFLATED_BYTES >= 10 * MAX_DOCUMENT_BYTES


@pytest.mark.parametrize(
    "content, message",
    [
        (b"%PDF-1.7\n" + b"/A#42" * (MAX_DOCUMENT_BYTES // 6) + b"\n%%EOF\n", "too many of its names behind escapes"),
        (b"%PDF-1.7\n" + b"/ObjStm stream\n" * (MAX_DOCUMENT_BYTES // 16) + b"\n%%EOF\n", "object stream"),
        (b"PK\x03\x04" + b"PK\x01\x02" * (MAX_DOCUMENT_BYTES // 5), "more than 10000 parts"),
    ],
    ids=["escaped-names", "object-streams", "zip-entries"],
)
def test_files_built_to_be_slow_to_check_are_refused_quickly(content, message) -> None:
    # Work is counted in function calls, not seconds: the same on a busy machine. A check that stays linear
    # makes at most a couple of calls per byte; one that is not would make many more for such a file.
    profile = cProfile.Profile()
    with pytest.raises(Invalid) as refused:
        profile.runcall(documents.check_file, "definition.pdf" if content.startswith(b"%PDF") else "terms.odt", content)
    assert message in refused.value.errors["file"]
    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    assert calls < 2 * MAX_DOCUMENT_BYTES, calls
