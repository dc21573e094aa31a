"""Pages and /api handlers: contracts (drafting, the document, signatures, lifecycle, amendments, renewal, budgets).

Thin: parse the input, call one function of `contracts.drafting`, `contracts.lifecycle`, `contracts.signing` or
`contracts.budgets`, read through `contracts.views`, render or answer JSON.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, Response, get, post, put
from litestar.params import FromPath, FromQuery
from litestar.response import Template

import catalog
from contracts import authority, budgets, documents, drafting, evidence, lifecycle, pricing, signing, views
from contracts.models import ContractStatus
from contracts.schemas import (
    AmendInput,
    ApprovalThresholdInput,
    BudgetInput,
    DraftInput,
    DraftUpdate,
    OptionalReasonInput,
    ReasonInput,
    RenewInput,
    SignInput,
    TerminateInput,
    amendment_reason_labels,
    billing_labels,
    route_labels,
)
from contracts.workflow import CONTRACT, VERSION
from market import clock, signing_keys
from market.auth import client_ip
from market.database import row_id
from market.errors import Invalid, NotFound
from market.formatting import number
from market.guards import current, kind
from market.i18n import _
from market.state import settings_of
from market.web import ApiInput, DbSession, FormBody, form_dict, page_number, parse, redirect, render

party = kind("agency", "provider")
agency = kind("agency")


def _store(request: Request) -> documents.DocumentStore:
    return documents.store_for(settings_of(request.app))


def _status_options() -> list[tuple[str, str]]:
    return [("", _("All"))] + [(status.value, CONTRACT.label(status)) for status in ContractStatus]


def _sort_options() -> list[tuple[str, str]]:
    return [("updated", _("Last change")), ("created", _("Newest")), ("number", _("Number")), ("status", _("Status"))]


def _billing_options() -> list[tuple[str, str]]:
    return list(billing_labels().items())


def _route_options() -> list[tuple[str, str]]:
    return list(route_labels().items())


def _reason_options() -> list[tuple[str, str]]:
    return list(amendment_reason_labels().items())


def _choices() -> dict[str, Any]:
    return {"billing_options": _billing_options(), "route_options": _route_options()}


# --- list and detail ------------------------------------------------------------------------------


@get("/contracts", guards=[party], include_in_schema=False)
async def contract_list(
    request: Request,
    db_session: DbSession,
    status: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    page: FromQuery[int | None] = None,
) -> Template:
    rows, paging = await views.list_contracts(
        db_session, current(request), status=status or None, sort=sort or "updated", page=page_number(page)
    )
    query = "&".join(f"{key}={value}" for key, value in (("status", status), ("sort", sort)) if value)
    return render(
        request,
        "contracts/list.html",
        rows=rows,
        page=paging,
        status=status or "",
        sort=sort or "updated",
        status_options=_status_options(),
        sort_options=_sort_options(),
        base_url="/contracts" + (f"?{query}" if query else ""),
    )


async def _detail(
    request: Request, db_session: Any, contract_id: int, status_code: int = 200, **context: Any
) -> Template:
    view = await views.view_contract(db_session, current(request), contract_id)
    checks = {}
    for version in view.versions:
        if version.document_key and version.document_sha256:
            checks[version.id] = await documents.check(_store(request), version.document_key, version.document_sha256)
    return render(
        request,
        "contracts/detail.html",
        status_code,
        view=view,
        contract=view.contract,
        checks=checks,
        verdicts=evidence.verdicts(view.contract, view.versions, view.signatures),
        reason_labels=amendment_reason_labels(),
        state_label=VERSION.label,
        **context,
    )


@get("/contracts/{contract_id:int}", guards=[party], include_in_schema=False)
async def contract_page(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> Template:
    return await _detail(request, db_session, contract_id)


# --- drafting -------------------------------------------------------------------------------------


async def _draft_form(
    request: Request, db_session: Any, form: dict[str, Any], errors: dict[str, str], status_code: int = 200
) -> Template:
    try:
        service_id = int(form.get("service_id") or 0)
    except ValueError:
        raise NotFound(_("No such service.")) from None
    offer = await drafting.listed_offer(db_session, service_id)
    figures = await budgets.budget_figures(db_session, current(request).organisation_id, _year(form.get("starts_on")))
    return render(
        request,
        "contracts/draft.html",
        status_code,
        offer=offer,
        form=form,
        errors=errors,
        figures=figures,
        **_choices(),
    )


def _year(value: Any) -> int:
    try:
        return date.fromisoformat(str(value)).year
    except ValueError:
        return clock.today().year


@get("/contracts/new", guards=[agency], include_in_schema=False)
async def draft_form_page(
    request: Request,
    db_session: DbSession,
    service_id: FromQuery[int],
    plan_id: FromQuery[int | None] = None,
    project_id: FromQuery[int | None] = None,
) -> Template:
    today = clock.today()
    form = {
        "service_id": service_id,
        "plan_id": plan_id or "",
        "project_id": project_id or "",
        "quantity": "1",
        "starts_on": pricing.add_months(today.replace(day=1), 1).isoformat(),
        "ends_on": "",
        "billing_period": "monthly",
        "route": "direct",
        "budget_reference": "",
        "special_terms": "",
    }
    return await _draft_form(request, db_session, form, {})


@post("/contracts/new", guards=[agency], include_in_schema=False)
async def draft_page(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        contract = await drafting.draft(db_session, current(request), parse(DraftInput, form))
    except Invalid as exc:
        return await _draft_form(request, db_session, form, exc.errors or {"form": exc.detail}, 422)
    return redirect(
        request,
        f"/contracts/{contract.id}",
        _("Draft %(number)s was saved; check it, then send it to the provider.", number=contract.number),
    )


async def _edit_form(
    request: Request,
    db_session: Any,
    contract_id: int,
    form: dict[str, Any] | None,
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    view = await views.view_contract(db_session, current(request), contract_id)
    version = view.current
    offer_plans = await catalog.offered_plans(db_session, version.service_version_id)
    if form is None:
        form = {
            key: getattr(version, key)
            for key in (
                "plan_id",
                "quantity",
                "starts_on",
                "ends_on",
                "billing_period",
                "route",
                "budget_reference",
                "special_terms",
                "lock_version",
            )
        }
    return render(
        request,
        "contracts/edit.html",
        status_code,
        view=view,
        contract=view.contract,
        plans=offer_plans,
        form=form,
        errors=errors,
        **_choices(),
    )


@get("/contracts/{contract_id:int}/edit", guards=[agency], include_in_schema=False)
async def edit_form_page(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> Template:
    return await _edit_form(request, db_session, contract_id, None, {})


@post("/contracts/{contract_id:int}/edit", guards=[agency], include_in_schema=False)
async def edit_page(request: Request, data: FormBody, db_session: DbSession, contract_id: FromPath[int]) -> Any:
    form = form_dict(data)
    try:
        await drafting.update_draft(db_session, current(request), contract_id, parse(DraftUpdate, form))
    except Invalid as exc:
        return await _edit_form(request, db_session, contract_id, form, exc.errors or {"form": exc.detail}, 422)
    return redirect(request, f"/contracts/{contract_id}", _("The draft was saved."))


# --- simple confirmed steps: send, withdraw, decline, revise, cancel --------------------------------

STEPS: dict[str, dict[str, Any]] = {
    "approve": {"reason": None},
    "send": {"reason": None},
    "withdraw": {"reason": "optional"},
    "decline": {"reason": "required"},
    "revise": {"reason": None},
    "cancel": {"reason": "required"},
}


def _step_texts(step: str) -> dict[str, str]:
    return {
        "approve": {
            "title": _("Approve the draft"),
            "button": _("Approve"),
            "explanation": _(
                "You approve this draft as a second member of the agency: it may then be sent even above the approval threshold. Your name and the time are recorded and published with the signed contract's approval milestone (your role only); any change to the draft withdraws the approval."
            ),
            "done": _("The draft was approved."),
        },
        "send": {
            "title": _("Send the contract to the provider"),
            "button": _("Freeze and send"),
            "explanation": _(
                "The document is rendered and frozen now, with its SHA-256 fingerprint. After sending, any change makes a new version, and signatures never carry over."
            ),
            "done": _("The contract was sent to the provider for signature."),
        },
        "withdraw": {
            "title": _("Withdraw the sent version"),
            "button": _("Withdraw"),
            "explanation": _(
                "The sent version is withdrawn before the other party signs it; its document stays on record. A contract returns to draft as a new version."
            ),
            "done": _("The version was withdrawn."),
        },
        "decline": {
            "title": _("Decline the sent version"),
            "button": _("Decline"),
            "explanation": _(
                "The other party sees your reason. Declining cannot be undone; they may send a new version."
            ),
            "done": _("The version was declined."),
        },
        "revise": {
            "title": _("Revise the declined contract"),
            "button": _("Open a new draft version"),
            "explanation": _(
                "A new draft version copying the declined one is opened for you to change and send again."
            ),
            "done": _("A new draft version was opened."),
        },
        "cancel": {
            "title": _("Cancel the contract"),
            "button": _("Cancel the contract"),
            "explanation": _("The contract is abandoned before signature. This cannot be undone."),
            "done": _("The contract was cancelled."),
        },
    }[step]


async def _run_step(request: Request, db_session: Any, contract_id: int, step: str, form: dict[str, Any]) -> Any:
    actor = current(request)
    reason_kind = STEPS[step]["reason"]
    reason = ""
    if reason_kind == "required":
        reason = parse(ReasonInput, {"reason": form.get("reason", "")}).reason
    elif reason_kind == "optional":
        reason = parse(OptionalReasonInput, {"reason": form.get("reason", "")}).reason
    if step == "approve":
        await authority.approve(db_session, actor, contract_id)
    elif step == "send":
        await drafting.send(db_session, actor, _store(request), contract_id)
    elif step == "withdraw":
        await drafting.withdraw(db_session, actor, contract_id, reason)
    elif step == "decline":
        await lifecycle.decline(db_session, actor, contract_id, reason)
    elif step == "revise":
        await drafting.revise(db_session, actor, contract_id)
    elif step == "cancel":
        await lifecycle.cancel(db_session, actor, contract_id, reason)


async def _contract_form(
    request: Request,
    db_session: Any,
    template: str,
    contract_id: int,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A form about one contract (a confirmed step, terminate, amend, renew), shown again with its errors."""
    view = await views.view_contract(db_session, current(request), contract_id)
    return render(
        request, template, status_code, view=view, contract=view.contract, form=form, errors=errors, **context
    )


async def _step_form(
    request: Request,
    db_session: Any,
    contract_id: int,
    step: str,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    texts, reason = _step_texts(step), STEPS[step]["reason"]
    return await _contract_form(
        request,
        db_session,
        "contracts/confirm.html",
        contract_id,
        form,
        errors,
        status_code,
        step=step,
        texts=texts,
        reason=reason,
    )


def _step_routes(step: str) -> list[Any]:
    """The confirmation page and its POST for one step (explicit paths, so other packages' pages under
    /contracts/{id}/... never collide with a catch-all)."""

    @get(
        f"/contracts/{{contract_id:int}}/{step}", guards=[party], include_in_schema=False, name=f"contract-{step}-form"
    )
    async def form_page(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> Template:
        return await _step_form(request, db_session, contract_id, step, {}, {})

    @post(f"/contracts/{{contract_id:int}}/{step}", guards=[party], include_in_schema=False, name=f"contract-{step}")
    async def submit_page(request: Request, data: FormBody, db_session: DbSession, contract_id: FromPath[int]) -> Any:
        form = form_dict(data)
        try:
            if form.get("confirm") != "yes":
                raise Invalid(
                    _("Please correct: %(fields)s.", fields="confirm"),
                    errors={"confirm": _("Tick the box to confirm.")},
                )
            await _run_step(request, db_session, contract_id, step, form)
        except Invalid as exc:
            return await _step_form(
                request, db_session, contract_id, step, form, exc.errors or {"form": exc.detail}, 422
            )
        return redirect(request, f"/contracts/{contract_id}", _step_texts(step)["done"])

    return [form_page, submit_page]


# --- the document and signing ---------------------------------------------------------------------


async def _stored(request: Request, db_session: Any, contract_id: int, number: int, pdf: bool) -> Response[bytes]:
    _contract, version = await signing.signer_page_data(db_session, current(request), contract_id, number)
    key, digest = (version.pdf_key, version.pdf_sha256) if pdf else (version.document_key, version.document_sha256)
    if key is None:
        raise NotFound(_("No PDF was made for this version."))
    try:
        body = await _store(request).get(key)
    except FileNotFoundError:
        raise NotFound(_("The stored document is missing.")) from None
    headers = {
        "X-Document-SHA256": documents.sha256(body),
        "X-Recorded-SHA256": digest or "",
        # the stored HTML is shown as it is, with no scripts and no outside resources
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox",
        "Cache-Control": "private, no-store",
    }
    if pdf:
        headers["Content-Disposition"] = f'inline; filename="contract-{contract_id}-v{number}.pdf"'
    return Response(body, media_type="application/pdf" if pdf else "text/html; charset=utf-8", headers=headers)


@get("/contracts/{contract_id:int}/versions/{number:int}/document", guards=[party], include_in_schema=False)
async def document_page(
    request: Request, db_session: DbSession, contract_id: FromPath[int], number: FromPath[int]
) -> Response[bytes]:
    return await _stored(request, db_session, contract_id, number, False)


@get("/contracts/{contract_id:int}/versions/{number:int}/document.pdf", guards=[party], include_in_schema=False)
async def pdf_page(
    request: Request, db_session: DbSession, contract_id: FromPath[int], number: FromPath[int]
) -> Response[bytes]:
    return await _stored(request, db_session, contract_id, number, True)


async def _sign_form(
    request: Request,
    db_session: Any,
    contract_id: int,
    number: int,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    view = await views.view_contract(db_session, current(request), contract_id)
    version = next((item for item in view.versions if item.number == number), None)
    if version is None or version.document_key is None:
        raise NotFound(_("No such version of this contract."))
    check = await documents.check(_store(request), version.document_key, version.document_sha256 or "")
    passkeys = [
        key for key in await signing_keys.list_keys(db_session, current(request).user_id) if key.kind == "passkey"
    ]
    return render(
        request,
        "contracts/sign.html",
        status_code,
        view=view,
        contract=view.contract,
        version=version,
        check=check,
        form=form,
        errors=errors,
        passkeys=passkeys,
        password_allowed=await signing.password_allowed(db_session, current(request).organisation_id),
    )


@get("/contracts/{contract_id:int}/versions/{number:int}/sign", guards=[party], include_in_schema=False)
async def sign_form_page(
    request: Request, db_session: DbSession, contract_id: FromPath[int], number: FromPath[int]
) -> Template:
    return await _sign_form(request, db_session, contract_id, number, {}, {})


def _signing_context(request: Request) -> dict[str, Any]:
    return {
        "settings": settings_of(request.app),
        "address": client_ip(request),
        "user_agent": request.headers.get("user-agent", ""),
    }


SIGN_FORM_FIELDS = ("method", "password", "confirm_read", "signer_name", "document_sha256", "nonce", "credential")


@post("/contracts/{contract_id:int}/versions/{number:int}/sign", guards=[party], include_in_schema=False)
async def sign_page(
    request: Request, data: FormBody, db_session: DbSession, contract_id: FromPath[int], number: FromPath[int]
) -> Any:
    form = form_dict(data)
    try:
        values = {key: form[key] for key in SIGN_FORM_FIELDS if form.get(key) not in (None, "")}
        await signing.sign(
            db_session,
            current(request),
            _store(request),
            contract_id,
            number,
            parse(SignInput, {**values, "confirm_read": form.get("confirm_read") or False}),
            **_signing_context(request),
        )
    except Invalid as exc:
        if isinstance(exc, signing.SigningRefused):
            await db_session.commit()  # keep the failure's record although the answer is an error
        for key in ("password", "nonce", "credential"):
            form.pop(key, None)
        return await _sign_form(request, db_session, contract_id, number, form, exc.errors or {"form": exc.detail}, 422)
    return redirect(request, f"/contracts/{contract_id}", _("Your signature was recorded."))


@post(
    "/contracts/{contract_id:int}/versions/{number:int}/signing-request",
    guards=[party],
    include_in_schema=False,
    status_code=201,
)
async def signing_request_page(
    request: Request, db_session: DbSession, contract_id: FromPath[int], number: FromPath[int]
) -> Response[dict[str, Any]]:
    """The sign page's script asks for the payload its passkey signs (JSON)."""
    answer = await signing.signing_request(db_session, current(request), settings_of(request.app), contract_id, number)
    return Response(answer, status_code=201, headers={"Cache-Control": "no-store"})


def _evidence_download(answer: dict[str, Any]) -> Response[dict[str, Any]]:
    name = f"{answer['contract_number']}-v{answer['version']}-{answer['side']}-signature.json"
    return Response(
        answer,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"},
    )


@get(
    "/contracts/{contract_id:int}/signatures/{signature_id:int}/evidence.json", guards=[party], include_in_schema=False
)
async def evidence_page(
    request: Request, db_session: DbSession, contract_id: FromPath[int], signature_id: FromPath[int]
) -> Response[dict[str, Any]]:
    return _evidence_download(await evidence.signature_bundle(db_session, current(request), contract_id, signature_id))


# --- terminate, amend, renew ----------------------------------------------------------------------


@get("/contracts/{contract_id:int}/terminate", guards=[party], include_in_schema=False)
async def terminate_form_page(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> Template:
    return await _contract_form(
        request, db_session, "contracts/terminate.html", contract_id, {"effective_on": clock.today().isoformat()}, {}
    )


@post("/contracts/{contract_id:int}/terminate", guards=[party], include_in_schema=False)
async def terminate_page(request: Request, data: FormBody, db_session: DbSession, contract_id: FromPath[int]) -> Any:
    form = form_dict(data)
    try:
        if form.get("confirm") != "yes":
            raise Invalid(
                _("Please correct: %(fields)s.", fields="confirm"), errors={"confirm": _("Tick the box to confirm.")}
            )
        values = {key: form.get(key, "") for key in ("reason", "effective_on")}
        await lifecycle.terminate(db_session, current(request), contract_id, parse(TerminateInput, values))
    except Invalid as exc:
        return await _contract_form(
            request, db_session, "contracts/terminate.html", contract_id, form, exc.errors or {"form": exc.detail}, 422
        )
    return redirect(request, f"/contracts/{contract_id}", _("The contract was terminated."))


@get("/contracts/{contract_id:int}/amend", guards=[party], include_in_schema=False)
async def amend_form_page(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> Template:
    return await _contract_form(
        request, db_session, "contracts/amend.html", contract_id, {}, {}, reason_options=_reason_options()
    )


AMEND_FIELDS = ("amendment_reason", "rationale", "quantity", "ends_on", "unit_price", "vat_rate_bp", "special_terms")


@post("/contracts/{contract_id:int}/amend", guards=[party], include_in_schema=False)
async def amend_page(request: Request, data: FormBody, db_session: DbSession, contract_id: FromPath[int]) -> Any:
    form = form_dict(data)
    try:
        if form.get("confirm") != "yes":
            raise Invalid(
                _("Please correct: %(fields)s.", fields="confirm"), errors={"confirm": _("Tick the box to confirm.")}
            )
        values = {key: form[key] for key in AMEND_FIELDS if key in form}
        if not str(values.get("special_terms", "")).strip() and form.get("change_special_terms") != "yes":
            values.pop("special_terms", None)  # a blank box leaves the special terms as they are
        await lifecycle.amend(db_session, current(request), _store(request), contract_id, parse(AmendInput, values))
    except Invalid as exc:
        return await _contract_form(
            request,
            db_session,
            "contracts/amend.html",
            contract_id,
            form,
            exc.errors or {"form": exc.detail},
            422,
            reason_options=_reason_options(),
        )
    return redirect(request, f"/contracts/{contract_id}", _("The amendment was sent for both signatures."))


@get("/contracts/{contract_id:int}/renew", guards=[agency], include_in_schema=False)
async def renew_form_page(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> Template:
    return await _contract_form(request, db_session, "contracts/renew.html", contract_id, {}, {})


@post("/contracts/{contract_id:int}/renew", guards=[agency], include_in_schema=False)
async def renew_page(request: Request, data: FormBody, db_session: DbSession, contract_id: FromPath[int]) -> Any:
    form = form_dict(data)
    try:
        values = {key: form.get(key, "") for key in ("starts_on", "ends_on", "quantity")}
        renewal = await drafting.renew(db_session, current(request), contract_id, parse(RenewInput, values))
    except Invalid as exc:
        return await _contract_form(
            request, db_session, "contracts/renew.html", contract_id, form, exc.errors or {"form": exc.detail}, 422
        )
    return redirect(request, f"/contracts/{renewal.id}", _("Renewal %(number)s was drafted.", number=renewal.number))


# --- budgets --------------------------------------------------------------------------------------


async def _budget_page(
    request: Request,
    db_session: Any,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    *,
    threshold_form: dict[str, Any] | None = None,
    threshold_errors: dict[str, str] | None = None,
) -> Template:
    actor = current(request)
    rows = await budgets.budgets(db_session, actor)
    threshold = await authority.approval_threshold(db_session, actor.organisation_id)
    return render(
        request,
        "contracts/budget.html",
        status_code,
        budgets=rows,
        form=form,
        errors=errors,
        threshold=threshold,
        threshold_form=threshold_form or {"threshold": "" if threshold is None else threshold},
        threshold_errors=threshold_errors or {},
    )


@get("/contracts/budget", guards=[agency], include_in_schema=False)
async def budget_page(request: Request, db_session: DbSession) -> Template:
    return await _budget_page(request, db_session, {"year": clock.today().year}, {})


@post("/contracts/budget", guards=[agency], include_in_schema=False)
async def budget_set_page(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        values = {key: str(form.get(key, "")).replace(",", "").strip() for key in ("year", "amount")}
        figures = await budgets.set_budget(db_session, current(request), parse(BudgetInput, values))
    except Invalid as exc:
        return await _budget_page(request, db_session, form, exc.errors or {"form": exc.detail}, 422)
    return redirect(request, "/contracts/budget", _("The %(year)s budget was recorded.", year=figures.year))


@post("/contracts/approval-threshold", guards=[agency], include_in_schema=False)
async def threshold_set_page(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    try:
        amount = str(form.get("threshold", "")).replace(",", "").replace("₩", "").strip()
        entry = parse(ApprovalThresholdInput, {"amount": amount or None})
        await authority.set_approval_threshold(db_session, current(request), entry.amount)
    except Invalid as exc:
        errors = {
            "threshold" if key == "amount" else key: message
            for key, message in (exc.errors or {"form": exc.detail}).items()
        }
        return await _budget_page(
            request, db_session, {"year": clock.today().year}, {}, 422, threshold_form=form, threshold_errors=errors
        )
    if entry.amount is None:
        return redirect(
            request, "/contracts/budget", _("The approval threshold was removed: drafts are sent without approval.")
        )
    return redirect(
        request,
        "/contracts/budget",
        _(
            "Drafts above ₩%(amount)s with VAT now need a second member's approval before they are sent.",
            amount=number(entry.amount),
        ),
    )


# --- API ------------------------------------------------------------------------------------------

# Each /api body is documented as its model and parsed by the handler (`parse`), so bad input answers 422 per field.


async def _json(request: Request, db_session: Any, contract_id: int) -> dict[str, Any]:
    return views.contract_json(await views.view_contract(db_session, current(request), contract_id))


@get("/api/contracts", guards=[party], tags=["contracts"], summary="Your organisation's contracts")
async def list_api(
    request: Request,
    db_session: DbSession,
    status: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    page: FromQuery[int | None] = None,
) -> dict[str, Any]:
    """Filter by `status`; `sort` is updated (default), created, number or status."""
    rows, paging = await views.list_contracts(
        db_session, current(request), status=status or None, sort=sort or "updated", page=page_number(page)
    )
    return {
        "total": paging.total,
        "page": paging.number,
        "page_count": paging.count,
        "results": [views.row_json(row) for row in rows],
    }


@post(
    "/api/contracts",
    guards=[agency],
    tags=["contracts"],
    status_code=201,
    summary="Draft a contract from a listed plan",
)
async def draft_api(request: Request, data: ApiInput[DraftInput], db_session: DbSession) -> dict[str, Any]:
    """The price is computed from the stored plan; no amount is accepted. 404 when the service was never listed,
    409 when it is no longer listed, 422 (with the figures) when the draft is over the year's remaining budget."""
    contract = await drafting.draft(db_session, current(request), parse(DraftInput, data))
    return await _json(request, db_session, row_id(contract))


@get(
    "/api/contracts/{contract_id:int}",
    guards=[party],
    tags=["contracts"],
    summary="A contract with its versions and signatures",
)
async def contract_api(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> dict[str, Any]:
    return await _json(request, db_session, contract_id)


@put("/api/contracts/{contract_id:int}/draft", guards=[agency], tags=["contracts"], summary="Change the draft")
async def update_api(
    request: Request, data: ApiInput[DraftUpdate], db_session: DbSession, contract_id: FromPath[int]
) -> dict[str, Any]:
    """`lock_version` must be the draft's current one (409 otherwise)."""
    await drafting.update_draft(db_session, current(request), contract_id, parse(DraftUpdate, data))
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/send",
    guards=[agency],
    tags=["contracts"],
    status_code=200,
    summary="Freeze the draft and send it",
)
async def send_api(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> dict[str, Any]:
    await drafting.send(db_session, current(request), _store(request), contract_id)
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/withdraw",
    guards=[party],
    tags=["contracts"],
    status_code=200,
    summary="Withdraw the sent version",
)
async def withdraw_api(
    request: Request, data: ApiInput[OptionalReasonInput], db_session: DbSession, contract_id: FromPath[int]
) -> dict[str, Any]:
    await drafting.withdraw(db_session, current(request), contract_id, parse(OptionalReasonInput, data).reason)
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/decline",
    guards=[party],
    tags=["contracts"],
    status_code=200,
    summary="Decline the sent version",
)
async def decline_api(
    request: Request, data: ApiInput[ReasonInput], db_session: DbSession, contract_id: FromPath[int]
) -> dict[str, Any]:
    await lifecycle.decline(db_session, current(request), contract_id, parse(ReasonInput, data).reason)
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/revise",
    guards=[agency],
    tags=["contracts"],
    status_code=200,
    summary="Open a new draft after a decline",
)
async def revise_api(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> dict[str, Any]:
    await drafting.revise(db_session, current(request), contract_id)
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/cancel",
    guards=[agency],
    tags=["contracts"],
    status_code=200,
    summary="Cancel before signature",
)
async def cancel_api(
    request: Request, data: ApiInput[ReasonInput], db_session: DbSession, contract_id: FromPath[int]
) -> dict[str, Any]:
    await lifecycle.cancel(db_session, current(request), contract_id, parse(ReasonInput, data).reason)
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/versions/{number:int}/signatures",
    guards=[party],
    tags=["contracts"],
    status_code=201,
    summary="Sign a sent version",
)
async def sign_api(
    request: Request,
    data: ApiInput[SignInput],
    db_session: DbSession,
    contract_id: FromPath[int],
    number: FromPath[int],
) -> dict[str, Any]:
    """Once per side: a second signature of the same side answers 409, as does a superseded version.

    With `method` `ed25519`, first ask for a signing request (`POST .../signing-requests`), sign its `payload`'s
    bytes with the private key of a signing key registered on your account, and send `nonce`, `key_id` and
    `signature` (base64). A nonce signs once and expires after five minutes. `password` works only where your
    organisation allows it; wrong passwords count towards the sign-in limit (then 429)."""
    try:
        await signing.sign(
            db_session,
            current(request),
            _store(request),
            contract_id,
            number,
            parse(SignInput, data),
            **_signing_context(request),
        )
    except signing.SigningRefused:
        await db_session.commit()  # keep the failure's record although the answer is an error
        raise
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/versions/{number:int}/signing-requests",
    guards=[party],
    tags=["contracts"],
    status_code=201,
    summary="Ask for a payload to sign",
)
async def signing_request_api(
    request: Request, db_session: DbSession, contract_id: FromPath[int], number: FromPath[int]
) -> Response[dict[str, Any]]:
    """`payload` is the exact text to sign (compact sorted JSON of the contract, version, side, document SHA-256 and
    `nonce`); an Ed25519 key signs its UTF-8 bytes, a passkey signs `challenge` (base64url of its SHA-256) with the
    `publicKey` options. Valid once, for five minutes."""
    answer = await signing.signing_request(db_session, current(request), settings_of(request.app), contract_id, number)
    return Response(answer, status_code=201, headers={"Cache-Control": "no-store"})


@get(
    "/api/contracts/{contract_id:int}/signatures/{signature_id:int}/evidence.json",
    guards=[party],
    tags=["contracts"],
    summary="A signature's evidence bundle",
)
async def evidence_api(
    request: Request, db_session: DbSession, contract_id: FromPath[int], signature_id: FromPath[int]
) -> Response[dict[str, Any]]:
    """Check it with `market contracts verify-signature BUNDLE` or `python contracts/verify_signature.py BUNDLE`, with
    no database and no network."""
    return _evidence_download(await evidence.signature_bundle(db_session, current(request), contract_id, signature_id))


@get(
    "/api/contracts/{contract_id:int}/versions/{number:int}/check",
    guards=[party],
    tags=["contracts"],
    summary="Check a stored document against its hash",
)
async def check_api(
    request: Request, db_session: DbSession, contract_id: FromPath[int], number: FromPath[int]
) -> dict[str, Any]:
    _contract, version = await signing.signer_page_data(db_session, current(request), contract_id, number)
    result = await documents.check(_store(request), version.document_key or "", version.document_sha256 or "")
    answer: dict[str, Any] = {
        "version": version.number,
        "recorded_sha256": result.expected,
        "stored_sha256": result.actual,
        "intact": result.intact,
    }
    if version.pdf_key and version.pdf_sha256:
        pdf = await documents.check(_store(request), version.pdf_key, version.pdf_sha256)
        answer["pdf"] = {"recorded_sha256": pdf.expected, "stored_sha256": pdf.actual, "intact": pdf.intact}
    return answer


@post(
    "/api/contracts/{contract_id:int}/terminate",
    guards=[party],
    tags=["contracts"],
    status_code=200,
    summary="Terminate early",
)
async def terminate_api(
    request: Request, data: ApiInput[TerminateInput], db_session: DbSession, contract_id: FromPath[int]
) -> dict[str, Any]:
    await lifecycle.terminate(db_session, current(request), contract_id, parse(TerminateInput, data))
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/amendments",
    guards=[party],
    tags=["contracts"],
    status_code=201,
    summary="Propose an amendment",
)
async def amend_api(
    request: Request, data: ApiInput[AmendInput], db_session: DbSession, contract_id: FromPath[int]
) -> dict[str, Any]:
    """`amendment_reason`: price_reduction, volume_change, duration_extension, tax_rate_change or other, with a written
    `rationale`; blank fields stay as signed. It must change something (422 otherwise) and takes effect when both sign."""
    await lifecycle.amend(db_session, current(request), _store(request), contract_id, parse(AmendInput, data))
    return await _json(request, db_session, contract_id)


@post(
    "/api/contracts/{contract_id:int}/renewals",
    guards=[agency],
    tags=["contracts"],
    status_code=201,
    summary="Draft a renewal",
)
async def renew_api(
    request: Request, data: ApiInput[RenewInput], db_session: DbSession, contract_id: FromPath[int]
) -> dict[str, Any]:
    renewal = await drafting.renew(db_session, current(request), contract_id, parse(RenewInput, data))
    return await _json(request, db_session, row_id(renewal))


def _budget_json(figures: budgets.BudgetFigures) -> dict[str, Any]:
    return {
        "year": figures.year,
        "amount": figures.amount,
        "committed": figures.committed,
        "remaining": figures.remaining,
    }


@get("/api/budgets", guards=[agency], tags=["contracts"], summary="The agency's yearly budgets and what remains")
async def budgets_api(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    return [_budget_json(figures) for figures in await budgets.budgets(db_session, current(request))]


@put("/api/budgets", guards=[agency], tags=["contracts"], summary="Record a yearly budget")
async def budget_api(request: Request, data: ApiInput[BudgetInput], db_session: DbSession) -> dict[str, Any]:
    return _budget_json(await budgets.set_budget(db_session, current(request), parse(BudgetInput, data)))


def _threshold_json(amount: int | None) -> dict[str, Any]:
    return {"amount": amount, "currency": "KRW"}


@get("/api/approval-threshold", guards=[agency], tags=["contracts"], summary="The agency's approval threshold")
async def threshold_api(request: Request, db_session: DbSession) -> dict[str, Any]:
    """`amount` in won with VAT: a draft above it is sent only once a second member approved it; null: no threshold."""
    return _threshold_json(await authority.approval_threshold(db_session, current(request).organisation_id))


@put("/api/approval-threshold", guards=[agency], tags=["contracts"], summary="Set the agency's approval threshold")
async def threshold_set_api(
    request: Request, data: ApiInput[ApprovalThresholdInput], db_session: DbSession
) -> dict[str, Any]:
    """Administrators only (403 otherwise). `amount` null removes the threshold."""
    entry = parse(ApprovalThresholdInput, data)
    return _threshold_json(await authority.set_approval_threshold(db_session, current(request), entry.amount))


@post(
    "/api/contracts/{contract_id:int}/approval",
    guards=[agency],
    tags=["contracts"],
    status_code=200,
    summary="Approve the draft",
)
async def approve_api(request: Request, db_session: DbSession, contract_id: FromPath[int]) -> dict[str, Any]:
    """A signer or administrator who neither drafted nor last changed the draft approves it (403 for a buyer, 409 for
    its own draft or one approved already). Above the agency's approval threshold a draft is sent only once approved;
    a change to the draft withdraws the approval."""
    await authority.approve(db_session, current(request), contract_id)
    return await _json(request, db_session, contract_id)


def routes() -> list[Any]:
    return [
        contract_list,
        budget_page,
        budget_set_page,
        draft_form_page,
        draft_page,
        contract_page,
        edit_form_page,
        edit_page,
        document_page,
        pdf_page,
        sign_form_page,
        sign_page,
        signing_request_page,
        evidence_page,
        terminate_form_page,
        terminate_page,
        amend_form_page,
        amend_page,
        renew_form_page,
        renew_page,
        *(handler for step in STEPS for handler in _step_routes(step)),
        list_api,
        draft_api,
        contract_api,
        update_api,
        send_api,
        withdraw_api,
        decline_api,
        revise_api,
        cancel_api,
        sign_api,
        signing_request_api,
        evidence_api,
        check_api,
        terminate_api,
        amend_api,
        renew_api,
        budgets_api,
        budget_api,
        threshold_set_page,
        threshold_api,
        threshold_set_api,
        approve_api,
    ]
