"""Providers' listing pages and API: create, edit, submit, revise and withdraw services; documents; versions."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, get, patch, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Template

from catalog import diff, documents, listings, schemas
from catalog.documents import MAX_DOCUMENT_BYTES
from catalog.listings import StaleEdit
from catalog.models import Document
from catalog.storage import Storage, storage_for
from market import hooks
from market.auth import Principal
from market.database import row_id
from market.errors import Invalid, NotFound
from market.guards import current, kind
from market.i18n import _
from market.state import settings_of
from market.web import ApiInput, DbSession, FormBody, form_dict, page_number, problem, redirect, render

provider = kind("provider")
# A document of at most 10 MB plus the form's other fields and multipart framing.
UPLOAD_BODY_LIMIT = MAX_DOCUMENT_BYTES + 256 * 1024
MultipartBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
# Beside the errors every /api operation declares (market.web.API_ERRORS):
GONE = {410: problem("The service was withdrawn or removed; `errors` gives its `status`, `date` and `reason`.")}
TOO_LARGE = {413: problem("The upload is larger than the limit.")}


def _storage(request: Request) -> Storage:
    return storage_for(settings_of(request.app))


def _zone(request: Request) -> Any:
    return settings_of(request.app).zone


def _viewer(request: Request) -> Principal | None:
    return request.scope.get("user")


# --- what the form pages share -------------------------------------------------------------------------


def _options() -> dict[str, Any]:
    return {
        "categories": schemas.category_labels(),
        "deployments": schemas.deployment_labels(),
        "schemes": schemas.scheme_labels(),
        "csap_types": schemas.csap_type_labels(),
        "grades": schemas.grade_labels(),
        "channels": schemas.channel_labels(),
        "units": schemas.unit_labels(),
        "document_kinds": schemas.document_kind_labels(),
        "file_size": diff.file_size,
    }


def _rows(values: dict[str, Any], requested: dict[str, int] | None = None) -> dict[str, int]:
    """Rows of plans and certifications to show: the filled ones, then empty ones (at least a few)."""
    requested = requested or {}
    return {
        group: max(requested.get(group, 0), len(values.get(group) or []) + 1, schemas.FORM_ROWS)
        for group in ("plans", "certifications")
    }


def _requested_rows(form: dict[str, Any]) -> dict[str, int]:
    rows = {}
    for group in ("plans", "certifications"):
        try:
            rows[group] = min(int(str(form.get(f"{group}_rows", "0"))), 50)
        except ValueError:
            rows[group] = 0
    return rows


def _add_row(form: dict[str, Any], values: dict[str, Any]) -> dict[str, int] | None:
    """The rows after an "add another" button, or None when the form was sent to be saved."""
    action = form.get("action", "save")
    if action not in ("add_plan", "add_certification"):
        return None
    rows = _rows(values, _requested_rows(form))
    rows["plans" if action == "add_plan" else "certifications"] += 1
    return rows


def _form_page(request: Request, template: str, status_code: int = 200, **context: Any) -> Template:
    values = context.pop("values")
    context.setdefault("errors", {})
    context.setdefault("stale", [])
    rows = context.pop("rows", None) or _rows(values)
    return render(request, template, status_code, values=values, rows=rows, **_options(), **context)


# --- provider pages ----------------------------------------------------------------------------------


@get("/provider/services", guards=[provider], include_in_schema=False)
async def dashboard(request: Request, db_session: DbSession, page: FromQuery[int | None] = None) -> Template:
    rows, paging = await listings.provider_dashboard(db_session, current(request), page_number(page))
    return render(request, "catalog/provider_services.html", rows=rows, page=paging)


@get("/services/new", guards=[provider], include_in_schema=False)
async def new_page(request: Request) -> Template:
    return _form_page(request, "catalog/service_new.html", values={})


@post("/services/new", guards=[provider], include_in_schema=False)
async def create_page(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    values = schemas.listing_from_form(form)
    rows = _add_row(form, values)
    if rows is not None:
        return _form_page(request, "catalog/service_new.html", values=values, rows=rows)
    try:
        listing = schemas.validate(schemas.ListingInput, values)
        service = await listings.create_service(db_session, current(request), listing)
    except Invalid as exc:
        return _form_page(
            request,
            "catalog/service_new.html",
            422,
            values=values,
            errors=exc.errors,
            rows=_rows(values, _requested_rows(form)),
        )
    return redirect(
        request, f"/services/{service.id}/edit", _("Draft saved. Add documents, then submit it when it is complete.")
    )


@get("/services/{service_id:int}/edit", guards=[provider], include_in_schema=False)
async def edit_page(request: Request, service_id: FromPath[int], db_session: DbSession) -> Template:
    editing = await listings.editing(db_session, current(request), service_id)
    if editing.version is None or editing.blocked:
        return render(request, "catalog/service_locked.html", editing=editing)
    return _form_page(
        request,
        "catalog/service_edit.html",
        editing=editing,
        values=schemas.form_values(editing.version.content),
        lock_version=editing.version.lock_version,
    )


@post("/services/{service_id:int}/edit", guards=[provider], include_in_schema=False)
async def save_page(request: Request, service_id: FromPath[int], data: FormBody, db_session: DbSession) -> Any:
    user = current(request)
    form = form_dict(data)
    values = schemas.listing_from_form(form)
    editing = await listings.editing(db_session, user, service_id)
    if editing.version is None or editing.blocked:
        return render(request, "catalog/service_locked.html", 409, editing=editing)
    lock_version = form.get("lock_version", "")
    rows = _add_row(form, values)
    if rows is not None:
        return _form_page(
            request, "catalog/service_edit.html", editing=editing, values=values, rows=rows, lock_version=lock_version
        )
    try:
        edit = schemas.validate(schemas.ListingEdit, values)
        await listings.save_draft(db_session, user, service_id, edit.lock_version, edit.changes())
    except StaleEdit as exc:
        return _form_page(
            request,
            "catalog/service_edit.html",
            409,
            editing=editing,
            values=values,
            stale=exc.changes,
            lock_version=exc.current_lock_version,
            rows=_rows(values, _requested_rows(form)),
        )
    except Invalid as exc:
        return _form_page(
            request,
            "catalog/service_edit.html",
            422,
            editing=editing,
            values=values,
            errors=exc.errors,
            lock_version=lock_version,
            rows=_rows(values, _requested_rows(form)),
        )
    return redirect(request, f"/services/{service_id}/edit", _("Draft saved."))


@get("/services/{service_id:int}/submit", guards=[provider], include_in_schema=False)
async def submit_page(request: Request, service_id: FromPath[int], db_session: DbSession) -> Template:
    editing = await listings.editing(db_session, current(request), service_id)
    problems = listings.readiness(editing) if editing.version and not editing.blocked else {}
    return render(request, "catalog/submit.html", editing=editing, errors=problems, stale=[], labels=_error_labels())


@post("/services/{service_id:int}/submit", guards=[provider], include_in_schema=False)
async def submit(request: Request, service_id: FromPath[int], data: FormBody, db_session: DbSession) -> Any:
    user = current(request)
    try:
        form = schemas.validate(schemas.SubmitInput, {"lock_version": form_dict(data).get("lock_version")})
        await listings.submit(db_session, user, service_id, form.lock_version)
    except StaleEdit as exc:
        editing = await listings.editing(db_session, user, service_id)
        return render(
            request, "catalog/submit.html", 409, editing=editing, errors={}, stale=exc.changes, labels=_error_labels()
        )
    except Invalid as exc:
        editing = await listings.editing(db_session, user, service_id)
        return render(
            request, "catalog/submit.html", 422, editing=editing, errors=exc.errors, stale=[], labels=_error_labels()
        )
    return redirect(
        request, f"/services/{service_id}", _("Submitted to the committee. You will hear from them by e-mail.")
    )


@get("/services/{service_id:int}/withdraw", guards=[provider], include_in_schema=False)
async def withdraw_page(request: Request, service_id: FromPath[int], db_session: DbSession) -> Template:
    view = await listings.view_service(db_session, current(request), service_id, zone=_zone(request))
    if not view.is_owner:
        raise NotFound(_("No such service."))
    return render(request, "catalog/withdraw.html", view=view, errors={}, form={"reason": ""})


@post("/services/{service_id:int}/withdraw", guards=[provider], include_in_schema=False)
async def withdraw(request: Request, service_id: FromPath[int], data: FormBody, db_session: DbSession) -> Any:
    user = current(request)
    form = form_dict(data)
    try:
        answer = schemas.validate(
            schemas.WithdrawInput, {"reason": form.get("reason", ""), "confirm": form.get("confirm", "")}
        )
        await listings.withdraw(db_session, user, service_id, answer.reason)
    except Invalid as exc:
        view = await listings.view_service(db_session, user, service_id, zone=_zone(request))
        return render(
            request, "catalog/withdraw.html", 422, view=view, errors=exc.errors, form={"reason": form.get("reason", "")}
        )
    return redirect(
        request, "/provider/services", _("The service was withdrawn. Buyers can no longer find or order it.")
    )


@get("/services/{service_id:int}/revise", guards=[provider], include_in_schema=False)
async def revise_page(request: Request, service_id: FromPath[int], db_session: DbSession) -> Template:
    editing = await listings.editing(db_session, current(request), service_id)
    return render(request, "catalog/service_locked.html", editing=editing)


@post("/services/{service_id:int}/revise", guards=[provider], include_in_schema=False)
async def revise(request: Request, service_id: FromPath[int], db_session: DbSession) -> Any:
    version = await listings.start_revision(db_session, current(request), _storage(request), service_id)
    return redirect(
        request,
        f"/services/{service_id}/edit",
        _(
            "Revision started as version %(n)s. Buyers keep seeing the listed version until the committee approves this one.",
            n=version.number,
        ),
    )


@get("/services/{service_id:int}/documents", guards=[provider], include_in_schema=False)
async def documents_page(request: Request, service_id: FromPath[int], db_session: DbSession) -> Template:
    editing = await listings.editing(db_session, current(request), service_id)
    return render(request, "catalog/documents.html", editing=editing, errors={}, **_options())


async def _read_upload(data: dict[str, Any]) -> tuple[str, bytes]:
    upload = data.get("file")
    if isinstance(upload, list):
        upload = upload[0]
    if not isinstance(upload, UploadFile):
        return "", b""
    try:
        return upload.filename or "", await upload.read(MAX_DOCUMENT_BYTES + 1)
    finally:
        await upload.close()


@post(
    "/services/{service_id:int}/documents",
    guards=[provider],
    include_in_schema=False,
    request_max_body_size=UPLOAD_BODY_LIMIT,
)
async def upload_page(request: Request, service_id: FromPath[int], data: MultipartBody, db_session: DbSession) -> Any:
    user = current(request)
    filename, content = await _read_upload(data)
    try:
        document = await documents.upload(
            db_session, user, _storage(request), service_id, str(data.get("kind", "")), filename, content
        )
    except Invalid as exc:
        editing = await listings.editing(db_session, user, service_id)
        return render(request, "catalog/documents.html", 422, editing=editing, errors=exc.errors, **_options())
    return redirect(
        request, f"/services/{service_id}/documents", _("“%(name)s” was attached.", name=document.original_name)
    )


@post("/services/{service_id:int}/documents/{document_id:int}/remove", guards=[provider], include_in_schema=False)
async def remove_document(
    request: Request, service_id: FromPath[int], document_id: FromPath[int], db_session: DbSession
) -> Any:
    document = await documents.remove(db_session, current(request), service_id, document_id)
    return redirect(
        request, f"/services/{service_id}/documents", _("“%(name)s” was removed.", name=document.original_name)
    )


# --- pages anyone may read (what they may see of it) ------------------------------------------------------


@get("/services/{service_id:int}", include_in_schema=False)
async def service_page(
    request: Request, service_id: FromPath[int], db_session: DbSession, version: FromQuery[int | None] = None
) -> Template:
    view = await listings.view_service(db_session, _viewer(request), service_id, version, zone=_zone(request))
    panels = await hooks.service_panels(db_session, service_id)
    return render(
        request,
        "catalog/service.html",
        view=view,
        **_options(),
        show=diff.show,
        show_plan=diff.show_plan,
        certification_text=diff.certification_text,
        panels=panels,
    )


@get("/services/{service_id:int}/diff", include_in_schema=False)
async def diff_page(
    request: Request,
    service_id: FromPath[int],
    db_session: DbSession,
    from_number: Annotated[int | None, QueryParameter(name="from")] = None,
    to_number: Annotated[int | None, QueryParameter(name="to")] = None,
) -> Template:
    result = await listings.compare_versions(
        db_session, _viewer(request), service_id, from_number, to_number, zone=_zone(request)
    )
    return render(request, "catalog/diff.html", result=result)


def _content_disposition(name: str) -> str:
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@get("/documents/{document_id:int}", include_in_schema=False)
async def download(request: Request, document_id: FromPath[int], db_session: DbSession) -> Response[bytes]:
    found = await documents.download(db_session, _viewer(request), _storage(request), document_id, zone=_zone(request))
    return Response(
        found.data,
        media_type=found.media_type,
        headers={
            "Content-Disposition": _content_disposition(found.name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "sandbox",
        },
    )


def _error_labels() -> dict[str, str]:
    """Readable names for the fields a submission names, to link each to its input."""
    labels = dict(diff.field_labels())
    labels.update(sla_availability=_("SLA availability"), documents=_("Documents"))
    return labels


# --- API ---------------------------------------------------------------------------------------------


def _document_json(document: Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "kind": document.kind,
        "name": document.original_name,
        "content_type": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
        "uploaded_at": document.uploaded_at.isoformat(),
        "url": f"/documents/{document.id}",
    }


def _summary_json(summary: listings.VersionSummary) -> dict[str, Any]:
    return {
        "number": summary.number,
        "state": summary.state,
        "created_at": summary.created_at.isoformat(),
        "updated_at": summary.updated_at.isoformat(),
        "submitted_at": summary.submitted_at.isoformat() if summary.submitted_at else None,
        "listed_at": summary.listed_at.isoformat() if summary.listed_at else None,
    }


def _version_json(version: listings.VersionView) -> dict[str, Any]:
    content = dict(version.content)
    bp = content.pop("sla_availability_bp")
    return {
        **_summary_json(version.summary),
        "lock_version": version.lock_version,
        **content,
        "sla_availability": None if bp is None else bp / 100,
        "documents": [_document_json(document) for document in version.documents],
    }


async def _service_json(db_session: Any, viewer: Principal | None, service_id: int, zone: Any) -> dict[str, Any]:
    view = await listings.view_service(db_session, viewer, service_id, zone=zone)
    body: dict[str, Any] = {
        "id": view.service.id,
        "status": view.service.status,
        "status_reason": view.service.status_reason,
        "status_changed_at": view.service.status_changed_at.isoformat(),
        "url": f"/services/{view.service.id}",
        "provider": {
            "id": view.provider.id,
            "name": view.provider.name,
            "contact_email": view.provider.contact_email,
            "contact_phone": view.provider.contact_phone,
            "website": view.provider.website,
            "is_sme": view.provider.is_sme,
        },
        "listed_version": view.listed_number,
        "version": _version_json(view.version),
        "versions": [_summary_json(summary) for summary in view.versions],
    }
    if view.is_owner:
        open_view = None
        if view.open_version is not None:
            open_view = (
                view.version
                if view.open_version.number == view.version.number
                else (
                    await listings.view_service(db_session, viewer, service_id, view.open_version.number, zone=zone)
                ).version
            )
        body["open_version"] = _version_json(open_view) if open_view else None
    return body


@post("/api/services", guards=[provider], tags=["listings"], status_code=201)
async def api_create(request: Request, data: ApiInput[schemas.ListingInput], db_session: DbSession) -> dict[str, Any]:
    """Create a service with its first draft (incomplete data is kept as a draft)."""
    listing = schemas.validate(schemas.ListingInput, data)
    service = await listings.create_service(db_session, current(request), listing)
    return await _service_json(db_session, current(request), row_id(service), _zone(request))


@get("/api/services/{service_id:int}", tags=["listings"], responses=GONE)
async def api_service(request: Request, service_id: FromPath[int], db_session: DbSession) -> dict[str, Any]:
    """A service as the caller may see it: the listed version; for its provider also the open draft."""
    return await _service_json(db_session, _viewer(request), service_id, _zone(request))


@patch("/api/services/{service_id:int}", guards=[provider], tags=["listings"])
async def api_save(
    request: Request, service_id: FromPath[int], data: ApiInput[schemas.ListingEdit], db_session: DbSession
) -> dict[str, Any]:
    """Change fields of the open draft; `lock_version` must be the one read, or the answer is 409 with what changed."""
    edit = schemas.validate(schemas.ListingEdit, data)
    await listings.save_draft(db_session, current(request), service_id, edit.lock_version, edit.changes(only_set=True))
    return await _service_json(db_session, current(request), service_id, _zone(request))


@post("/api/services/{service_id:int}/submit", guards=[provider], tags=["listings"], status_code=200)
async def api_submit(
    request: Request, service_id: FromPath[int], data: ApiInput[schemas.SubmitInput], db_session: DbSession
) -> dict[str, Any]:
    """Submit the open draft to the committee; 422 names every missing or wrong field."""
    form = schemas.validate(schemas.SubmitInput, data)
    await listings.submit(db_session, current(request), service_id, form.lock_version)
    return await _service_json(db_session, current(request), service_id, _zone(request))


@post("/api/services/{service_id:int}/revise", guards=[provider], tags=["listings"], status_code=201)
async def api_revise(request: Request, service_id: FromPath[int], db_session: DbSession) -> dict[str, Any]:
    """Start a revision of a listed service: a new draft copied from the listed version."""
    await listings.start_revision(db_session, current(request), _storage(request), service_id)
    return await _service_json(db_session, current(request), service_id, _zone(request))


@post("/api/services/{service_id:int}/withdraw", guards=[provider], tags=["listings"], status_code=200)
async def api_withdraw(
    request: Request, service_id: FromPath[int], data: ApiInput[schemas.WithdrawInput], db_session: DbSession
) -> dict[str, Any]:
    """Withdraw a listed service for good: give a `reason` and `"confirm": true`."""
    answer = schemas.validate(schemas.WithdrawInput, data)
    service = await listings.withdraw(db_session, current(request), service_id, answer.reason)
    return {
        "id": service.id,
        "status": service.status,
        "status_reason": service.status_reason,
        "status_changed_at": service.status_changed_at.isoformat(),
    }


@post(
    "/api/services/{service_id:int}/documents",
    guards=[provider],
    tags=["listings"],
    status_code=201,
    request_max_body_size=UPLOAD_BODY_LIMIT,
    responses=TOO_LARGE,
)
async def api_upload(
    request: Request, service_id: FromPath[int], data: MultipartBody, db_session: DbSession
) -> dict[str, Any]:
    """Attach a document (multipart fields `kind` and `file`): PDF or OpenDocument, at most 10 MB."""
    filename, content = await _read_upload(data)
    document = await documents.upload(
        db_session, current(request), _storage(request), service_id, str(data.get("kind", "")), filename, content
    )
    return _document_json(document)


@get("/api/services/{service_id:int}/versions", tags=["listings"], responses=GONE)
async def api_versions(request: Request, service_id: FromPath[int], db_session: DbSession) -> list[dict[str, Any]]:
    """The versions the caller may see: every version ever listed; its provider sees drafts too."""
    return [
        _summary_json(summary)
        for summary in await listings.version_list(db_session, _viewer(request), service_id, _zone(request))
    ]


@get("/api/services/{service_id:int}/diff", tags=["listings"], responses=GONE)
async def api_diff(
    request: Request,
    service_id: FromPath[int],
    db_session: DbSession,
    from_number: Annotated[int | None, QueryParameter(name="from")] = None,
    to_number: Annotated[int | None, QueryParameter(name="to")] = None,
) -> dict[str, Any]:
    """The fields that differ between two versions, with old and new values as shown on the page."""
    result = await listings.compare_versions(
        db_session, _viewer(request), service_id, from_number, to_number, _zone(request)
    )
    return {
        "service_id": result.service.id,
        "from": result.old.number,
        "to": result.new.number,
        "changes": [{"field": c.field, "label": c.label, "old": c.old, "new": c.new} for c in result.changes],
    }


routes = [
    dashboard,
    new_page,
    create_page,
    edit_page,
    save_page,
    submit_page,
    submit,
    withdraw_page,
    withdraw,
    revise_page,
    revise,
    documents_page,
    upload_page,
    remove_document,
    service_page,
    diff_page,
    download,
    api_create,
    api_service,
    api_save,
    api_submit,
    api_revise,
    api_withdraw,
    api_upload,
    api_versions,
    api_diff,
]
