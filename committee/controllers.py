"""The committee's pages and JSON API. Thin: parse, call one service function, render or redirect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from committee import cases, certificates, meetings, members, providers, reviews, schemas, views
from committee.models import CaseState
from committee.workflow import CASE
from market.errors import Invalid
from market.guards import signed_in
from market.i18n import _
from market.web import ApiInput, DbSession, FormBody, Page, check_page, form_dict, page_number, parse, redirect, render

PAGE: dict[str, Any] = {"include_in_schema": False, "guards": [signed_in]}
API: dict[str, Any] = {"guards": [signed_in], "tags": ["committee"]}
PUBLIC_API: dict[str, Any] = {"tags": ["certificates"]}


# --- pages: members ---------------------------------------------------------------------------------


@get("/committee/cases", **PAGE)
async def my_cases_page(request: Request, db_session: DbSession) -> Template:
    role = await members.role_of(db_session, request.user)
    rows = await cases.my_cases(db_session, request.user)
    return render(request, "committee/my_cases.html", cases=[views.case_row(row) for row in rows], role=role)


async def _case_page(
    request: Request,
    db_session: DbSession,
    case_id: int,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Template:
    detail = await cases.case_detail(db_session, request.user, case_id)
    page = views.case_page(detail)
    eligible: list[dict[str, Any]] = []
    if page["can_assign"]:
        eligible = await cases.eligible_members(db_session, await cases.case_row(db_session, case_id))
    template = "committee/provider_case.html" if request.user.is_kind("provider") else "committee/case.html"
    return render(
        request, template, status_code=status_code, case=page, eligible=eligible, errors=errors or {}, form=form or {}
    )


@get("/committee/cases/{case_id:int}", **PAGE)
async def case_page(request: Request, db_session: DbSession, case_id: FromPath[int]) -> Template:
    return await _case_page(request, db_session, case_id)


async def _case_action(
    request: Request,
    db_session: DbSession,
    case_id: int,
    data: Any,
    work: Callable[[dict[str, Any]], Awaitable[Any]],
    message: str,
) -> Any:
    form = form_dict(data)
    try:
        await work(form)
    except Invalid as exc:
        await db_session.rollback()
        return await _case_page(request, db_session, case_id, 422, exc.errors or {"form": exc.detail}, form)
    return redirect(request, f"/committee/cases/{case_id}", message)


@post("/committee/cases/{case_id:int}/review", **PAGE)
async def review_submit(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    async def work(form: dict[str, Any]) -> Any:
        review = schemas.review_from_form(form)
        return await reviews.submit_review(
            db_session, request.user, case_id, answers=review.answers, approve=review.approve, comment=review.comment
        )

    return await _case_action(request, db_session, case_id, data, work, _("Your review is submitted."))


@post("/committee/cases/{case_id:int}/withdraw", **PAGE)
async def review_withdraw(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    async def work(form: dict[str, Any]) -> Any:
        return await reviews.withdraw_review(db_session, request.user, case_id, parse(schemas.Reason, form).reason)

    return await _case_action(
        request, db_session, case_id, data, work, _("Your review is withdrawn; the withdrawal is recorded.")
    )


@get("/committee/reviews", **PAGE)
async def my_reviews_page(request: Request, db_session: DbSession) -> Template:
    return render(
        request,
        "committee/my_reviews.html",
        reviews=[views.review_row(row) for row in await reviews.my_reviews(db_session, request.user)],
    )


async def _ties_page(
    request: Request,
    db_session: DbSession,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Template:
    ties = await members.ties_of(db_session, request.user.user_id)
    options = await providers.provider_options(db_session)
    return render(
        request,
        "committee/ties.html",
        status_code=status_code,
        ties=ties,
        providers=options,
        names=dict(options),
        kinds=schemas.TIE_KINDS,
        errors=errors or {},
        form=form or {},
    )


@get("/committee/ties", **PAGE)
async def ties_page(request: Request, db_session: DbSession) -> Template:
    await members.require_member(db_session, request.user)
    return await _ties_page(request, db_session)


@post("/committee/ties", **PAGE)
async def tie_declare(request: Request, db_session: DbSession, data: FormBody) -> Any:
    form = form_dict(data)
    try:
        tie = parse(schemas.TieInput, form)
        await members.declare_tie(db_session, request.user, **tie.model_dump())
    except Invalid as exc:
        await db_session.rollback()
        return await _ties_page(request, db_session, 422, exc.errors, form)
    return redirect(request, "/committee/ties", _("Your tie is declared."))


@post("/committee/ties/{tie_id:int}/end", **PAGE)
async def tie_end(request: Request, db_session: DbSession, tie_id: FromPath[int], data: FormBody) -> Any:
    form = form_dict(data)
    try:
        await members.end_tie(db_session, request.user, tie_id, parse(schemas.TieEnd, form).ends_on)
    except Invalid as exc:
        await db_session.rollback()
        return await _ties_page(request, db_session, 422, exc.errors, form)
    return redirect(request, "/committee/ties", _("The end of the tie is recorded."))


# --- pages: chair and secretariat -----------------------------------------------------------------------


@get("/committee/queue", **PAGE)
async def queue_page(
    request: Request,
    db_session: DbSession,
    case_state: Annotated[str | None, QueryParameter(name="state")] = None,
    overdue: FromQuery[bool] = False,
) -> Template:
    rows = await cases.queue(db_session, request.user, state=case_state or None, overdue_only=overdue)
    return render(
        request,
        "committee/queue.html",
        cases=[views.case_row(row) for row in rows],
        state=case_state or "",
        overdue=overdue,
        states=[(s.value, CASE.label(s)) for s in CaseState],
    )


@post("/committee/cases/{case_id:int}/complete", **PAGE)
async def case_complete(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    return await _case_action(
        request,
        db_session,
        case_id,
        data,
        lambda form: cases.mark_complete(db_session, request.user, case_id),
        _("The submission is complete and goes to the committee."),
    )


@post("/committee/cases/{case_id:int}/incomplete", **PAGE)
async def case_incomplete(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    async def work(form: dict[str, Any]) -> Any:
        return await cases.mark_incomplete(db_session, request.user, case_id, parse(schemas.Message, form).message)

    return await _case_action(
        request, db_session, case_id, data, work, _("The submission is returned to the provider.")
    )


@post("/committee/cases/{case_id:int}/assign", **PAGE)
async def case_assign(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    async def work(form: dict[str, Any]) -> Any:
        return await cases.assign(db_session, request.user, case_id, parse(schemas.MemberIds, form).member_ids)

    return await _case_action(request, db_session, case_id, data, work, _("The members are assigned."))


@post("/committee/cases/{case_id:int}/auto-assign", **PAGE)
async def case_auto_assign(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    return await _case_action(
        request,
        db_session,
        case_id,
        data,
        lambda form: cases.auto_assign(db_session, request.user, case_id),
        _("The members are assigned."),
    )


@post("/committee/cases/{case_id:int}/release", **PAGE)
async def case_release(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    async def work(form: dict[str, Any]) -> Any:
        return await cases.release(db_session, request.user, case_id, parse(schemas.MemberId, form).member_id)

    return await _case_action(request, db_session, case_id, data, work, _("The member is released from the case."))


@post("/committee/cases/{case_id:int}/return", **PAGE)
async def case_return(request: Request, db_session: DbSession, case_id: FromPath[int], data: FormBody) -> Any:
    async def work(form: dict[str, Any]) -> Any:
        return await reviews.return_for_revision(
            db_session, request.user, case_id, parse(schemas.Message, form).message
        )

    return await _case_action(
        request, db_session, case_id, data, work, _("The case is returned to the provider for revision.")
    )


async def _meetings_page(
    request: Request,
    db_session: DbSession,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Template:
    role = await members.require_staff(db_session, request.user)
    return render(
        request,
        "committee/sessions.html",
        status_code=status_code,
        meetings=await meetings.meetings(db_session, request.user),
        role=role,
        errors=errors or {},
        form=form or {},
    )


@get("/committee/sessions", **PAGE)
async def meetings_page(request: Request, db_session: DbSession) -> Template:
    return await _meetings_page(request, db_session)


@post("/committee/sessions", **PAGE)
async def meeting_create(request: Request, db_session: DbSession, data: FormBody) -> Any:
    form = form_dict(data)
    try:
        meeting = await meetings.create_meeting(
            db_session, request.user, **parse(schemas.MeetingInput, form).model_dump()
        )
    except Invalid as exc:
        await db_session.rollback()
        return await _meetings_page(request, db_session, 422, exc.errors, form)
    return redirect(request, f"/committee/sessions/{meeting.id}", _("The session is created."))


async def _meeting_page(
    request: Request,
    db_session: DbSession,
    meeting_id: int,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
) -> Template:
    role = await members.require_staff(db_session, request.user)
    record = await meetings.minutes(db_session, request.user, meeting_id)
    return render(
        request,
        "committee/session.html",
        status_code=status_code,
        meeting=views.meeting_page(record),
        role=role,
        errors=errors or {},
    )


@get("/committee/sessions/{meeting_id:int}", **PAGE)
async def meeting_page(request: Request, db_session: DbSession, meeting_id: FromPath[int]) -> Template:
    return await _meeting_page(request, db_session, meeting_id)


async def _meeting_action(
    request: Request, db_session: DbSession, meeting_id: int, work: Callable[[], Awaitable[Any]], message: str
) -> Any:
    try:
        await work()
    except Invalid as exc:
        await db_session.rollback()
        return await _meeting_page(request, db_session, meeting_id, 422, exc.errors or {"form": exc.detail})
    return redirect(request, f"/committee/sessions/{meeting_id}", message)


@post("/committee/sessions/{meeting_id:int}/attendance", **PAGE)
async def meeting_attendance(request: Request, db_session: DbSession, meeting_id: FromPath[int], data: FormBody) -> Any:
    form = form_dict(data)
    return await _meeting_action(
        request,
        db_session,
        meeting_id,
        lambda: meetings.record_attendance(
            db_session, request.user, meeting_id, parse(schemas.MemberIds, form).member_ids
        ),
        _("Attendance is recorded."),
    )


@post("/committee/sessions/{meeting_id:int}/cases", **PAGE)
async def meeting_add_case(request: Request, db_session: DbSession, meeting_id: FromPath[int], data: FormBody) -> Any:
    form = form_dict(data)
    return await _meeting_action(
        request,
        db_session,
        meeting_id,
        lambda: meetings.add_to_meeting(db_session, request.user, meeting_id, parse(schemas.CaseId, form).case_id),
        _("The case is before the session."),
    )


@post("/committee/sessions/{meeting_id:int}/confirm", **PAGE)
async def meeting_confirm(request: Request, db_session: DbSession, meeting_id: FromPath[int], data: FormBody) -> Any:
    form = form_dict(data)

    async def work() -> Any:
        choice = parse(schemas.ConfirmInput, form)
        return await meetings.confirm_decision(
            db_session, request.user, meeting_id, choice.case_id, override=choice.override or None, reason=choice.reason
        )

    return await _meeting_action(request, db_session, meeting_id, work, _("The decision is recorded."))


@post("/committee/sessions/{meeting_id:int}/close", **PAGE)
async def meeting_close(request: Request, db_session: DbSession, meeting_id: FromPath[int], data: FormBody) -> Any:
    return await _meeting_action(
        request,
        db_session,
        meeting_id,
        lambda: meetings.close_meeting(db_session, request.user, meeting_id),
        _("The session is closed."),
    )


@get("/committee/sessions/{meeting_id:int}/minutes.csv", **PAGE)
async def meeting_csv(request: Request, db_session: DbSession, meeting_id: FromPath[int]) -> Response[str]:
    record = await meetings.minutes(db_session, request.user, meeting_id)
    return Response(
        meetings.minutes_csv(record),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{record["held_on"]}-session-{meeting_id}-minutes.csv"'},
    )


async def _certificates_page(
    request: Request,
    db_session: DbSession,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Template:
    role = await members.require_staff(db_session, request.user)
    rows = await certificates.certificates_by_expiry(db_session, request.user)
    return render(
        request,
        "committee/certificates.html",
        status_code=status_code,
        certificates=views.certificate_rows(rows),
        role=role,
        errors=errors or {},
        form=form or {},
    )


@get("/committee/certificates", **PAGE)
async def certificates_page(request: Request, db_session: DbSession) -> Template:
    return await _certificates_page(request, db_session)


@post("/committee/certificates/{number:str}/suspend", **PAGE)
async def certificate_suspend(request: Request, db_session: DbSession, number: FromPath[str], data: FormBody) -> Any:
    form = form_dict(data)
    try:
        choice = parse(schemas.SuspendInput, form)
        await certificates.suspend(db_session, request.user, number, reason=choice.reason, until=choice.until)
    except Invalid as exc:
        await db_session.rollback()
        return await _certificates_page(request, db_session, 422, exc.errors, {**form, "number": number})
    return redirect(request, "/committee/certificates", _("The certificate is suspended; the listing has left search."))


@post("/committee/certificates/{number:str}/revoke", **PAGE)
async def certificate_revoke(request: Request, db_session: DbSession, number: FromPath[str], data: FormBody) -> Any:
    form = form_dict(data)
    try:
        await certificates.revoke(db_session, request.user, number, reason=parse(schemas.Reason, form).reason)
    except Invalid as exc:
        await db_session.rollback()
        return await _certificates_page(request, db_session, 422, exc.errors, {**form, "number": number})
    return redirect(request, "/committee/certificates", _("The certificate is revoked; the listing has left search."))


async def _bars_page(
    request: Request,
    db_session: DbSession,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Template:
    role = await members.require_staff(db_session, request.user)
    options = await providers.provider_options(db_session)
    return render(
        request,
        "committee/bars.html",
        status_code=status_code,
        bars=await certificates.bars(db_session, request.user),
        providers=options,
        names=dict(options),
        role=role,
        errors=errors or {},
        form=form or {},
    )


@get("/committee/bars", **PAGE)
async def bars_page(request: Request, db_session: DbSession) -> Template:
    return await _bars_page(request, db_session)


@post("/committee/bars", **PAGE)
async def bar_create(request: Request, db_session: DbSession, data: FormBody) -> Any:
    form = form_dict(data)
    try:
        await certificates.bar_provider(db_session, request.user, **parse(schemas.BarInput, form).model_dump())
    except Invalid as exc:
        await db_session.rollback()
        return await _bars_page(request, db_session, 422, exc.errors, form)
    return redirect(request, "/committee/bars", _("The provider is barred; its listings are suspended."))


async def _criteria_page(
    request: Request,
    db_session: DbSession,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Template:
    role = await members.require_staff(db_session, request.user)
    sets = await members.criteria_sets(db_session)
    current = sets[0]
    form = form or {
        "criteria": schemas.criteria_to_text(current.criteria),
        "threshold": current.threshold,
        "reviewers_per_case": current.reviewers_per_case,
        "review_period_days": current.review_period_days,
        "certificate_years": current.certificate_years,
        "note": "",
    }
    return render(
        request,
        "committee/criteria.html",
        status_code=status_code,
        sets=sets,
        role=role,
        errors=errors or {},
        form=form,
    )


@get("/committee/criteria", **PAGE)
async def criteria_page(request: Request, db_session: DbSession) -> Template:
    return await _criteria_page(request, db_session)


@post("/committee/criteria", **PAGE)
async def criteria_publish(request: Request, db_session: DbSession, data: FormBody) -> Any:
    form = form_dict(data)
    try:
        choice = parse(
            schemas.CriteriaInput, {**form, "criteria": schemas.criteria_from_text(str(form.get("criteria", "")))}
        )
        await members.publish_criteria_set(db_session, request.user, **choice.model_dump())
    except Invalid as exc:
        await db_session.rollback()
        return await _criteria_page(request, db_session, 422, exc.errors, form)
    return redirect(request, "/committee/criteria", _("The new criteria set applies to cases opened from now on."))


# --- pages: providers ---------------------------------------------------------------------------------


@get("/provider/cases", **PAGE)
async def provider_cases_page(request: Request, db_session: DbSession) -> Template:
    return render(
        request,
        "committee/provider_cases.html",
        cases=[views.provider_case_row(row) for row in await cases.provider_cases(db_session, request.user)],
        reminders=await certificates.reminders_for_provider(db_session, request.user),
    )


@get("/provider/certificates", **PAGE)
async def provider_certificates_page(request: Request, db_session: DbSession) -> Template:
    return render(
        request,
        "committee/provider_certificates.html",
        certificates=views.certificate_rows(await certificates.provider_certificates(db_session, request.user)),
        reminders=await certificates.reminders_for_provider(db_session, request.user),
    )


@post("/provider/certificates/{number:str}/renew", **PAGE)
async def provider_renew(request: Request, db_session: DbSession, number: FromPath[str], data: FormBody) -> Any:
    case = await cases.apply_for_renewal(db_session, request.user, number)
    return redirect(
        request,
        f"/committee/cases/{case.id}",
        _("Your renewal application is received; the certificate stays valid until it is decided."),
    )


# --- pages: public --------------------------------------------------------------------------------------


@get("/certificates", include_in_schema=False)
async def register_page(
    request: Request, db_session: DbSession, page: FromQuery[int | None] = None, number: FromQuery[str | None] = None
) -> Any:
    if number:
        return redirect(request, f"/certificates/{number.strip().upper()}")
    current = page_number(page)
    rows, total = await certificates.register(db_session, offset=(current - 1) * 20, limit=20)
    paging = check_page(Page(current, 20, total))
    return render(
        request, "committee/register.html", certificates=views.certificate_rows(rows), page=paging, total=total
    )


@get("/certificates/{number:str}", include_in_schema=False)
async def verification_page(request: Request, db_session: DbSession, number: FromPath[str]) -> Template:
    certificate = await certificates.certificate_by_number(db_session, number)
    return render(
        request,
        "committee/verification.html",
        certificate=certificates.certificate_json(certificate),
        row=views.certificate_row(certificate),
    )


# --- API -----------------------------------------------------------------------------------------------


@get("/api/committee/cases", **API)
async def api_my_cases(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    """The signed-in member's assigned cases."""
    return await cases.my_cases(db_session, request.user)


@get("/api/committee/queue", **API)
async def api_queue(
    request: Request,
    db_session: DbSession,
    case_state: Annotated[str | None, QueryParameter(name="state")] = None,
    overdue: FromQuery[bool] = False,
) -> list[dict[str, Any]]:
    """Open cases (or one state), oldest first, with age and overdue flag; chair and secretariat."""
    return await cases.queue(db_session, request.user, state=case_state or None, overdue_only=overdue)


@get(["/api/committee/cases/{case_id:int}", "/api/provider/cases/{case_id:int}"], **API)
async def api_case(request: Request, db_session: DbSession, case_id: FromPath[int]) -> dict[str, Any]:
    """One case as the caller may see it: reviews only after one's own is submitted."""
    return await cases.case_detail(db_session, request.user, case_id)


@post("/api/committee/cases/{case_id:int}/complete", status_code=200, **API)
async def api_complete(request: Request, db_session: DbSession, case_id: FromPath[int]) -> dict[str, Any]:
    case = await cases.mark_complete(db_session, request.user, case_id)
    return {"id": case.id, "state": case.state}


@post("/api/committee/cases/{case_id:int}/incomplete", status_code=200, **API)
async def api_incomplete(
    request: Request, db_session: DbSession, case_id: FromPath[int], data: ApiInput[schemas.Message]
) -> dict[str, Any]:
    case = await cases.mark_incomplete(db_session, request.user, case_id, parse(schemas.Message, data).message)
    return {"id": case.id, "state": case.state}


@post("/api/committee/cases/{case_id:int}/assign", status_code=200, **API)
async def api_assign(
    request: Request, db_session: DbSession, case_id: FromPath[int], data: ApiInput[schemas.MemberIds]
) -> dict[str, Any]:
    created = await cases.assign(db_session, request.user, case_id, parse(schemas.MemberIds, data).member_ids)
    return {"assigned": [a.member_id for a in created]}


@post("/api/committee/cases/{case_id:int}/auto-assign", status_code=200, **API)
async def api_auto_assign(request: Request, db_session: DbSession, case_id: FromPath[int]) -> dict[str, Any]:
    created = await cases.auto_assign(db_session, request.user, case_id)
    return {"assigned": [a.member_id for a in created]}


@post("/api/committee/cases/{case_id:int}/release", status_code=200, **API)
async def api_release(
    request: Request, db_session: DbSession, case_id: FromPath[int], data: ApiInput[schemas.MemberId]
) -> dict[str, Any]:
    await cases.release(db_session, request.user, case_id, parse(schemas.MemberId, data).member_id)
    return {"released": data.get("member_id")}


@post("/api/committee/cases/{case_id:int}/return", status_code=200, **API)
async def api_return(
    request: Request, db_session: DbSession, case_id: FromPath[int], data: ApiInput[schemas.Message]
) -> dict[str, Any]:
    decision = await reviews.return_for_revision(
        db_session, request.user, case_id, parse(schemas.Message, data).message
    )
    return {"case_id": case_id, "outcome": decision.outcome}


@post("/api/committee/cases/{case_id:int}/review", status_code=201, **API)
async def api_review(
    request: Request, db_session: DbSession, case_id: FromPath[int], data: ApiInput[schemas.ReviewInput]
) -> dict[str, Any]:
    """Submit one's final review: `answers` {code: {passed, score, comment}}, or `approve` and `comment` for a revision."""
    review = parse(schemas.ReviewInput, data)
    created = await reviews.submit_review(
        db_session, request.user, case_id, answers=review.answers, approve=review.approve, comment=review.comment
    )
    case = await cases.case_row(db_session, case_id)
    return {"review": cases.review_json(created), "case_state": case.state}


@post("/api/committee/cases/{case_id:int}/withdraw", status_code=200, **API)
async def api_withdraw(
    request: Request, db_session: DbSession, case_id: FromPath[int], data: ApiInput[schemas.Reason]
) -> dict[str, Any]:
    review = await reviews.withdraw_review(db_session, request.user, case_id, parse(schemas.Reason, data).reason)
    return cases.review_json(review)


@get("/api/committee/reviews", **API)
async def api_my_reviews(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    return await reviews.my_reviews(db_session, request.user)


def _tie_json(tie: Any) -> dict[str, Any]:
    return {
        "id": tie.id,
        "provider_id": tie.provider_id,
        "kind": tie.kind,
        "starts_on": tie.starts_on,
        "ends_on": tie.ends_on,
        "note": tie.note,
    }


@get("/api/committee/ties", **API)
async def api_ties(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    await members.require_member(db_session, request.user)
    return [_tie_json(tie) for tie in await members.ties_of(db_session, request.user.user_id)]


@post("/api/committee/ties", status_code=201, **API)
async def api_tie_declare(request: Request, db_session: DbSession, data: ApiInput[schemas.TieInput]) -> dict[str, Any]:
    return _tie_json(await members.declare_tie(db_session, request.user, **parse(schemas.TieInput, data).model_dump()))


@post("/api/committee/ties/{tie_id:int}/end", status_code=200, **API)
async def api_tie_end(
    request: Request, db_session: DbSession, tie_id: FromPath[int], data: ApiInput[schemas.TieEnd]
) -> dict[str, Any]:
    return _tie_json(await members.end_tie(db_session, request.user, tie_id, parse(schemas.TieEnd, data).ends_on))


def _meeting_json(meeting: Any) -> dict[str, Any]:
    return {
        "id": meeting.id,
        "held_on": meeting.held_on,
        "title": meeting.title,
        "quorum": meeting.quorum,
        "attendees": meeting.attendees,
        "status": meeting.status,
    }


@get("/api/committee/sessions", **API)
async def api_meetings(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    return [_meeting_json(m) for m in await meetings.meetings(db_session, request.user)]


@post("/api/committee/sessions", status_code=201, **API)
async def api_meeting_create(
    request: Request, db_session: DbSession, data: ApiInput[schemas.MeetingInput]
) -> dict[str, Any]:
    return _meeting_json(
        await meetings.create_meeting(db_session, request.user, **parse(schemas.MeetingInput, data).model_dump())
    )


@get("/api/committee/sessions/{meeting_id:int}", **API)
async def api_minutes(request: Request, db_session: DbSession, meeting_id: FromPath[int]) -> dict[str, Any]:
    """The session's record (minutes): attendance, quorum, every case with its outcome and reason."""
    return await meetings.minutes(db_session, request.user, meeting_id)


@post("/api/committee/sessions/{meeting_id:int}/attendance", status_code=200, **API)
async def api_attendance(
    request: Request, db_session: DbSession, meeting_id: FromPath[int], data: ApiInput[schemas.MemberIds]
) -> dict[str, Any]:
    return _meeting_json(
        await meetings.record_attendance(
            db_session, request.user, meeting_id, parse(schemas.MemberIds, data).member_ids
        )
    )


@post("/api/committee/sessions/{meeting_id:int}/cases", status_code=200, **API)
async def api_meeting_add(
    request: Request, db_session: DbSession, meeting_id: FromPath[int], data: ApiInput[schemas.CaseId]
) -> dict[str, Any]:
    decision = await meetings.add_to_meeting(db_session, request.user, meeting_id, parse(schemas.CaseId, data).case_id)
    return {"case_id": decision.case_id, "session_id": decision.session_id}


@post("/api/committee/sessions/{meeting_id:int}/confirm", status_code=200, **API)
async def api_confirm(
    request: Request, db_session: DbSession, meeting_id: FromPath[int], data: ApiInput[schemas.ConfirmInput]
) -> dict[str, Any]:
    choice = parse(schemas.ConfirmInput, data)
    decision = await meetings.confirm_decision(
        db_session, request.user, meeting_id, choice.case_id, override=choice.override or None, reason=choice.reason
    )
    return {"case_id": decision.case_id, "outcome": decision.outcome, "confirmation": decision.confirmation}


@post("/api/committee/sessions/{meeting_id:int}/close", status_code=200, **API)
async def api_meeting_close(request: Request, db_session: DbSession, meeting_id: FromPath[int]) -> dict[str, Any]:
    return _meeting_json(await meetings.close_meeting(db_session, request.user, meeting_id))


@get("/api/committee/certificates", **API)
async def api_certificates_by_expiry(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    return [
        certificates.certificate_json(c) for c in await certificates.certificates_by_expiry(db_session, request.user)
    ]


@post("/api/committee/certificates/{number:str}/suspend", status_code=200, **API)
async def api_suspend(
    request: Request, db_session: DbSession, number: FromPath[str], data: ApiInput[schemas.SuspendInput]
) -> dict[str, Any]:
    choice = parse(schemas.SuspendInput, data)
    return certificates.certificate_json(
        await certificates.suspend(db_session, request.user, number, reason=choice.reason, until=choice.until)
    )


@post("/api/committee/certificates/{number:str}/revoke", status_code=200, **API)
async def api_revoke(
    request: Request, db_session: DbSession, number: FromPath[str], data: ApiInput[schemas.Reason]
) -> dict[str, Any]:
    return certificates.certificate_json(
        await certificates.revoke(db_session, request.user, number, reason=parse(schemas.Reason, data).reason)
    )


def _bar_json(bar: Any) -> dict[str, Any]:
    return {
        "id": bar.id,
        "provider_id": bar.provider_id,
        "starts_on": bar.starts_on,
        "ends_on": bar.ends_on,
        "reason": bar.reason,
    }


@get("/api/committee/bars", **API)
async def api_bars(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    return [_bar_json(b) for b in await certificates.bars(db_session, request.user)]


@post("/api/committee/bars", status_code=201, **API)
async def api_bar_create(request: Request, db_session: DbSession, data: ApiInput[schemas.BarInput]) -> dict[str, Any]:
    return _bar_json(
        await certificates.bar_provider(db_session, request.user, **parse(schemas.BarInput, data).model_dump())
    )


def _criteria_json(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "version": item.version,
        "criteria": item.criteria,
        "threshold": item.threshold,
        "reviewers_per_case": item.reviewers_per_case,
        "review_period_days": item.review_period_days,
        "certificate_years": item.certificate_years,
        "created_at": item.created_at,
    }


@get("/api/committee/criteria", **API)
async def api_criteria(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    await members.require_staff(db_session, request.user)
    return [_criteria_json(item) for item in await members.criteria_sets(db_session)]


@post("/api/committee/criteria", status_code=201, **API)
async def api_criteria_publish(
    request: Request, db_session: DbSession, data: ApiInput[schemas.CriteriaInput]
) -> dict[str, Any]:
    return _criteria_json(
        await members.publish_criteria_set(db_session, request.user, **parse(schemas.CriteriaInput, data).model_dump())
    )


@get("/api/provider/cases", **API)
async def api_provider_cases(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    """The provider's cases: state, requests for supplements, reasons for refusal."""
    return await cases.provider_cases(db_session, request.user)


@get("/api/provider/certificates", **API)
async def api_provider_certificates(request: Request, db_session: DbSession) -> list[dict[str, Any]]:
    return [
        certificates.certificate_json(c) for c in await certificates.provider_certificates(db_session, request.user)
    ]


@post("/api/provider/certificates/{number:str}/renew", status_code=201, **API)
async def api_renew(request: Request, db_session: DbSession, number: FromPath[str]) -> dict[str, Any]:
    case = await cases.apply_for_renewal(db_session, request.user, number)
    return {"case_id": case.id, "state": case.state}


@get("/api/certificates", exclude_from_auth=True, **PUBLIC_API)
async def api_register(db_session: DbSession, page: FromQuery[int | None] = None) -> dict[str, Any]:
    """The public register of certificates, 20 a page."""
    current = page_number(page)
    rows, total = await certificates.register(db_session, offset=(current - 1) * 20, limit=20)
    check_page(Page(current, 20, total))
    return {"total": total, "page": current, "certificates": [certificates.certificate_json(c) for c in rows]}


@get("/api/certificates/{number:str}", exclude_from_auth=True, **PUBLIC_API)
async def api_verify(db_session: DbSession, number: FromPath[str]) -> dict[str, Any]:
    """Verify a certificate by its number: its service, exact version, validity and status."""
    return certificates.certificate_json(await certificates.certificate_by_number(db_session, number))


def routes() -> list[Any]:
    return [
        my_cases_page,
        case_page,
        review_submit,
        review_withdraw,
        my_reviews_page,
        ties_page,
        tie_declare,
        tie_end,
        queue_page,
        case_complete,
        case_incomplete,
        case_assign,
        case_auto_assign,
        case_release,
        case_return,
        meetings_page,
        meeting_create,
        meeting_page,
        meeting_attendance,
        meeting_add_case,
        meeting_confirm,
        meeting_close,
        meeting_csv,
        certificates_page,
        certificate_suspend,
        certificate_revoke,
        bars_page,
        bar_create,
        criteria_page,
        criteria_publish,
        provider_cases_page,
        provider_certificates_page,
        provider_renew,
        register_page,
        verification_page,
        api_my_cases,
        api_queue,
        api_case,
        api_complete,
        api_incomplete,
        api_assign,
        api_auto_assign,
        api_release,
        api_return,
        api_review,
        api_withdraw,
        api_my_reviews,
        api_ties,
        api_tie_declare,
        api_tie_end,
        api_meetings,
        api_meeting_create,
        api_minutes,
        api_attendance,
        api_meeting_add,
        api_confirm,
        api_meeting_close,
        api_certificates_by_expiry,
        api_suspend,
        api_revoke,
        api_bars,
        api_bar_create,
        api_criteria,
        api_criteria_publish,
        api_provider_cases,
        api_provider_certificates,
        api_renew,
        api_register,
        api_verify,
    ]
