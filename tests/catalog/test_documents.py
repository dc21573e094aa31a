"""Documents: PDF or OpenDocument only, known by content, at most 10 MB, stored under generated names outside
the web root, and downloadable only by those who may see the version they belong to."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from catalog import listings
from catalog.documents import MAX_DOCUMENT_BYTES
from catalog.models import Document, ServiceStatus
from catalog.storage import LocalStorage
from market.auth import SystemActor
from market.models import Organisation
from tests.catalog.listing_factories import (  # noqa: F401  (catalog_alone is a fixture)
    EXECUTABLE,
    PDF,
    catalog_alone,
    draft_service,
    listed_service,
    opendocument,
    principal,
    submit_and_list,
)
from tests.committee.factories import appoint  # the committee's reviewers are its members in office
from tests.helpers import audit_actions, count, make_organisation, make_user

pytestmark = pytest.mark.usefixtures("catalog_alone")


def _stored_files(settings) -> list:
    root = settings.data_dir / "documents"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


async def _own_draft(web, settings, **fields) -> tuple[int, Organisation]:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        organisation = await session.get(Organisation, user.organisation_id)
    return await draft_service(web.sessions, settings, user, organisation, with_document=False, **fields), organisation


async def _upload(
    web,
    service_id: int,
    name: str,
    content: bytes,
    kind: str = "service_definition",
    content_type: str = "application/pdf",
):
    token = await web.csrf(f"/services/{service_id}/documents")
    return await web.client.post(
        f"/services/{service_id}/documents",
        data={"_csrf_token": token, "kind": kind},
        files={"file": (name, content, content_type)},
        follow_redirects=False,
    )


async def test_a_pdf_is_stored_under_a_generated_name_outside_the_web_root(web, settings) -> None:
    service_id, _org = await _own_draft(web, settings)
    response = await _upload(web, service_id, "서비스 정의서.pdf", PDF)
    assert response.status_code == 303, response.text[:2000]
    async with web.sessions() as session:
        document = (await session.scalars(sa.select(Document))).one()
    assert (document.kind, document.original_name, document.content_type, document.size) == (
        "service_definition",
        "서비스 정의서.pdf",
        "application/pdf",
        len(PDF),
    )
    assert document.sha256 == hashlib.sha256(PDF).hexdigest()
    files = _stored_files(settings)
    assert len(files) == 1 and files[0].read_bytes() == PDF
    assert files[0].name == document.storage_key and "pdf" not in files[0].name and len(document.storage_key) == 32
    assert files[0].is_relative_to(settings.data_dir / "documents")
    assert (await web.client.get(f"/static/{document.storage_key}")).status_code == 404
    assert "document.upload" in await audit_actions(web.sessions)
    listing = await web.client.get(f"/services/{service_id}/documents")
    assert "서비스 정의서.pdf" in listing.text


@pytest.mark.parametrize(
    "extension, mimetype",
    [
        ("odt", "application/vnd.oasis.opendocument.text"),
        ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
        ("odp", "application/vnd.oasis.opendocument.presentation"),
    ],
)
async def test_opendocument_files_are_accepted_by_their_content(web, settings, extension, mimetype) -> None:
    service_id, _org = await _own_draft(web, settings)
    response = await _upload(
        web,
        service_id,
        f"terms.{extension}",
        opendocument(mimetype),
        kind="terms_of_use",
        content_type="application/octet-stream",
    )
    assert response.status_code == 303, response.text[:2000]
    async with web.sessions() as session:
        document = (await session.scalars(sa.select(Document))).one()
    assert (document.content_type, document.kind) == (mimetype, "terms_of_use")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"Just some text", "this file's content is neither"),
        ("definition.pdf", EXECUTABLE, "this file's content is neither"),  # an executable renamed to .pdf
        (
            "terms.odt",
            opendocument(mimetype_first=False),
            "this file's content is neither",
        ),  # a zip, not an OpenDocument
        ("terms.odt", opendocument(compress=True), "this file's content is neither"),
        ("terms.odt", opendocument("application/zip"), "this file's content is neither"),
        ("definition.odt", PDF, "rename it to end in .pdf"),
        ("definition.pdf", b"", "The file is empty."),
    ],
)
async def test_files_that_are_not_pdf_or_opendocument_by_content_are_refused(
    web, settings, name, content, message
) -> None:
    service_id, _org = await _own_draft(web, settings)
    response = await _upload(web, service_id, name, content)
    assert response.status_code == 422
    assert message in response.text.replace("&#39;", "'")
    assert await count(web.sessions, Document) == 0
    assert _stored_files(settings) == []
    assert "document.upload" not in await audit_actions(web.sessions)


async def test_a_file_over_10_mb_is_refused(web, settings) -> None:
    service_id, _org = await _own_draft(web, settings)
    content = PDF + b"0" * (MAX_DOCUMENT_BYTES + 1 - len(PDF))
    response = await _upload(web, service_id, "big.pdf", content)
    assert response.status_code == 422 and "larger than 10 MB" in response.text
    assert await count(web.sessions, Document) == 0 and _stored_files(settings) == []
    exactly = await _upload(web, service_id, "limit.pdf", content[:MAX_DOCUMENT_BYTES])
    assert exactly.status_code == 303


async def test_a_request_far_over_the_limit_is_cut_off_with_413(web, settings) -> None:
    service_id, _org = await _own_draft(web, settings)
    response = await _upload(web, service_id, "huge.pdf", PDF + b"0" * (12 * 1024 * 1024))
    assert response.status_code == 413
    assert await count(web.sessions, Document) == 0 and _stored_files(settings) == []


async def test_the_kind_of_document_must_be_one_of_the_offered(web, settings) -> None:
    service_id, _org = await _own_draft(web, settings)
    response = await _upload(web, service_id, "definition.pdf", PDF, kind="invoice")
    assert response.status_code == 422 and "Choose what the document is." in response.text
    assert await count(web.sessions, Document) == 0


async def test_another_provider_cannot_attach_to_a_draft(web, settings) -> None:
    owner_org = await make_organisation(web.sessions, "provider")
    owner = await make_user(web.sessions, owner_org)
    service_id = await draft_service(web.sessions, settings, owner, owner_org, with_document=False)
    await web.login_as("provider")
    token = await web.csrf("/provider/services")
    response = await web.client.post(
        f"/services/{service_id}/documents",
        data={"_csrf_token": token, "kind": "service_definition"},
        files={"file": ("x.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert await count(web.sessions, Document) == 0 and _stored_files(settings) == []


async def test_a_document_is_removed_from_the_draft(web, settings) -> None:
    service_id, _org = await _own_draft(web, settings)
    await _upload(web, service_id, "definition.pdf", PDF)
    async with web.sessions() as session:
        document_id = (await session.scalars(sa.select(Document.id))).one()
    response = await web.submit(
        f"/services/{service_id}/documents/{document_id}/remove", form_page=f"/services/{service_id}/documents"
    )
    assert response.status_code == 303
    assert await count(web.sessions, Document) == 0
    assert "document.remove" in await audit_actions(web.sessions)


async def test_documents_of_a_submitted_version_cannot_change(web, settings) -> None:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        organisation = await session.get(Organisation, user.organisation_id)
    service_id = await draft_service(web.sessions, settings, user, organisation)
    async with web.sessions() as session, session.begin():
        await listings.submit(session, principal(user, organisation), service_id, 1)
    token = await web.csrf(f"/services/{service_id}/documents")
    response = await web.client.post(
        f"/services/{service_id}/documents",
        data={"_csrf_token": token, "kind": "terms_of_use"},
        files={"file": ("terms.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert response.status_code == 409
    assert await count(web.sessions, Document) == 1


# --- downloads --------------------------------------------------------------------------------------


async def _document_id(sessions) -> int:
    async with sessions() as session:
        return (await session.scalars(sa.select(Document.id).order_by(Document.id).limit(1))).one()


async def test_the_owner_downloads_a_draft_document_and_nobody_else_can(web, settings) -> None:
    owner_org = await make_organisation(web.sessions, "provider")
    owner = await make_user(web.sessions, owner_org)
    await draft_service(web.sessions, settings, owner, owner_org)
    document_id = await _document_id(web.sessions)
    assert (await web.client.get(f"/documents/{document_id}")).status_code == 404  # the public
    for kind in ("provider", "agency", "committee", "operator"):
        await web.login_as(kind)
        assert (await web.client.get(f"/documents/{document_id}")).status_code == 404, kind
    await web.login(owner.email)
    response = await web.client.get(f"/documents/{document_id}")
    assert response.status_code == 200 and response.content == PDF


async def test_a_listed_document_is_downloadable_by_anyone_as_an_attachment(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    await listed_service(web.sessions, settings, user, org)
    response = await web.client.get(f"/documents/{await _document_id(web.sessions)}")
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-type"].startswith("application/pdf")
    assert response.headers["content-disposition"].startswith('attachment; filename="definition.pdf"')
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_committee_downloads_documents_of_a_submission(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await draft_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        await listings.submit(session, principal(user, org), service_id, 1)
    document_id = await _document_id(web.sessions)
    await web.login_as("agency")
    assert (await web.client.get(f"/documents/{document_id}")).status_code == 404
    await appoint(web.sessions, await web.login_as("committee"))
    assert (await web.client.get(f"/documents/{document_id}")).status_code == 200


async def test_documents_of_a_withdrawn_service_answer_410_to_the_public(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        await listings.withdraw(session, principal(user, org), service_id, "Discontinued")
    assert (await web.client.get(f"/documents/{await _document_id(web.sessions)}")).status_code == 410


async def test_a_revision_draft_document_stays_private_while_the_listed_one_is_public(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        await listings.start_revision(
            session, principal(user, org), LocalStorage(settings.data_dir / "documents"), service_id
        )
    async with web.sessions() as session:
        listed_doc, draft_doc = (await session.scalars(sa.select(Document).order_by(Document.id))).all()
    assert listed_doc.storage_key != draft_doc.storage_key and draft_doc.sha256 == listed_doc.sha256
    assert (await web.client.get(f"/documents/{listed_doc.id}")).status_code == 200
    assert (await web.client.get(f"/documents/{draft_doc.id}")).status_code == 404
    await submit_and_list(web.sessions, user, org, service_id)
    assert (await web.client.get(f"/documents/{draft_doc.id}")).status_code == 200  # now listed
    assert (await web.client.get(f"/documents/{listed_doc.id}")).status_code == 200  # superseded, kept


async def test_a_suspended_service_keeps_its_documents_readable(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        await listings.change_status(
            session, SystemActor(email="committee"), service_id, ServiceStatus.suspended, "Review"
        )
    assert (await web.client.get(f"/documents/{await _document_id(web.sessions)}")).status_code == 200
