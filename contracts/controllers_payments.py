"""Pages and /api handlers: invoices and their payments, and Stripe's webhook."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from contracts import invoices, webhooks
from contracts import payments as _payments  # noqa: F401 (registers the Stripe outbox job; sweep registers the daily sweep)
from contracts.workflow import INVOICE
from market import clock
from market.errors import Invalid
from market.guards import signed_in
from market.i18n import _
from market.web import ApiInput, DbSession, FormBody, form_dict, page_number, parse, redirect, render

PAGE: dict[str, Any] = {"include_in_schema": False, "guards": [signed_in]}
API: dict[str, Any] = {"guards": [signed_in], "tags": ["invoices"]}


def _today(request: Request) -> Any:
    from market.state import settings_of

    return clock.today(settings_of(request.app).zone)


def _status_options() -> list[tuple[str, str]]:
    return [
        ("", _("All")),
        ("due", _("To be paid")),
        *[(status, INVOICE.label(status)) for status in invoices.STATUS_FILTERS[2:]],
    ]


# --- pages ---------------------------------------------------------------------------------------------


@get("/invoices", **PAGE)
async def invoices_page(
    request: Request,
    db_session: DbSession,
    status: FromQuery[str] = "",
    page: Annotated[int | None, QueryParameter(name="page")] = None,
) -> Template:
    listing = await invoices.list_invoices(
        db_session, request.user, status=status, page=page_number(page), today=_today(request)
    )
    base_url = f"/invoices?status={status}" if status else "/invoices"
    csv_url = f"/invoices/export.csv?status={status}" if status else "/invoices/export.csv"
    return render(
        request,
        "contracts/invoices.html",
        listing=listing,
        statuses=_status_options(),
        base_url=base_url,
        csv_url=csv_url,
        today=_today(request),
        label=INVOICE.label,
        viewer_kind=request.user.organisation_kind,
    )


@get("/invoices/export.csv", **PAGE)
async def invoices_export(request: Request, db_session: DbSession, status: FromQuery[str] = "") -> Response[str]:
    body = await invoices.invoices_csv(db_session, request.user, status=status, today=_today(request))
    name = f"invoices-{_today(request).isoformat()}{'-' + status if status else ''}.csv"
    return Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


async def _invoice_page(
    request: Request,
    db_session: DbSession,
    invoice_id: int,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Template:
    detail = await invoices.invoice_detail(db_session, request.user, invoice_id)
    return render(
        request,
        "contracts/invoice.html",
        status_code=status_code,
        detail=detail,
        invoice=detail.invoice,
        today=_today(request),
        label=INVOICE.label,
        errors=errors or {},
        form=form or {},
    )


@get("/invoices/{invoice_id:int}", **PAGE)
async def invoice_page(request: Request, db_session: DbSession, invoice_id: FromPath[int]) -> Template:
    return await _invoice_page(request, db_session, invoice_id)


@post("/invoices/{invoice_id:int}/payments", **PAGE)
async def payment_record(request: Request, db_session: DbSession, invoice_id: FromPath[int], data: FormBody) -> Any:
    form = form_dict(data)
    try:
        await invoices.record_payment(
            db_session, request.user, invoice_id, parse(invoices.PaymentInput, form), today=_today(request)
        )
    except Invalid as exc:
        await db_session.rollback()
        return await _invoice_page(request, db_session, invoice_id, 422, exc.errors or {"form": exc.detail}, form)
    return redirect(request, f"/invoices/{invoice_id}", _("The payment is recorded."))


@post("/invoices/{invoice_id:int}/void", **PAGE)
async def invoice_void(request: Request, db_session: DbSession, invoice_id: FromPath[int], data: FormBody) -> Any:
    form = form_dict(data)
    try:
        if form.pop("confirm", None) != "yes":  # voiding cannot be undone: the page asks for a tick first
            raise Invalid(
                _("Please correct: %(fields)s.", fields="confirm"),
                errors={"confirm": _("Tick the box to confirm that the invoice is void.")},
            )
        await invoices.void_invoice(db_session, request.user, invoice_id, parse(invoices.VoidInput, form))
    except Invalid as exc:  # the box stays unticked on the page shown again
        await db_session.rollback()
        return await _invoice_page(request, db_session, invoice_id, 422, exc.errors or {"form": exc.detail}, form)
    return redirect(request, f"/invoices/{invoice_id}", _("The invoice is void."))


# --- /api ----------------------------------------------------------------------------------------------


@get("/api/invoices", summary="Invoices of your organisation (an operator sees all), newest due date first", **API)
async def api_invoices(
    request: Request,
    db_session: DbSession,
    status: FromQuery[str] = "",
    page: Annotated[int | None, QueryParameter(name="page")] = None,
) -> dict[str, Any]:
    today = _today(request)
    listing = await invoices.list_invoices(db_session, request.user, status=status, page=page_number(page), today=today)
    return {
        "items": [row.as_json(today) for row in listing.items],
        "page": listing.page.number,
        "pages": listing.page.count,
        "total": listing.page.total,
        "status": status,
    }


@get("/api/invoices/{invoice_id:int}", summary="One invoice with its payments", **API)
async def api_invoice(request: Request, db_session: DbSession, invoice_id: FromPath[int]) -> dict[str, Any]:
    return (await invoices.invoice_detail(db_session, request.user, invoice_id)).as_json(_today(request))


@post(
    "/api/invoices/{invoice_id:int}/payments",
    summary="Record a bank transfer (the provider or an operator)",
    status_code=201,
    **API,
)
async def api_payment_record(
    request: Request,
    db_session: DbSession,
    invoice_id: FromPath[int],
    data: ApiInput[invoices.PaymentInput],
) -> dict[str, Any]:
    await invoices.record_payment(
        db_session, request.user, invoice_id, parse(invoices.PaymentInput, data), today=_today(request)
    )
    return (await invoices.invoice_detail(db_session, request.user, invoice_id)).as_json(_today(request))


@post(
    "/api/invoices/{invoice_id:int}/void",
    summary="Void an invoice issued in error (an operator)",
    status_code=200,
    **API,
)
async def api_invoice_void(
    request: Request,
    db_session: DbSession,
    invoice_id: FromPath[int],
    data: ApiInput[invoices.VoidInput],
) -> dict[str, Any]:
    await invoices.void_invoice(db_session, request.user, invoice_id, parse(invoices.VoidInput, data))
    return (await invoices.invoice_detail(db_session, request.user, invoice_id)).as_json(_today(request))


def routes() -> list[Any]:
    return [
        invoices_page,
        invoices_export,
        invoice_page,
        payment_record,
        invoice_void,
        api_invoices,
        api_invoice,
        api_payment_record,
        api_invoice_void,
        webhooks.stripe_webhook,
    ]
