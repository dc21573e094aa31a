"""Agencies' procurement projects: pages under /projects and their JSON twins under /api/projects."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from litestar import Request, Response, get, post, put
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from catalog import exports, projects, search, search_cache
from catalog.facets import unit_label
from catalog.models import Outcome, ProjectStatus
from market import hooks
from market.database import row_id
from market.errors import Invalid, NotFound
from market.guards import current, kind
from market.i18n import _
from market.state import settings_of
from market.web import ApiInput, DbSession, FormBody, form_dict, page_number, parse, redirect, render

agency = kind("agency")


def _search_from_form(form: dict[str, Any]) -> dict[str, list[str]]:
    """The search page sends its search as one query string."""
    return parse_qs(str(form.get("search") or ""), keep_blank_values=False)


def _project_page(request: Request, view: projects.ProjectView, status_code: int = 200, **context: Any) -> Template:
    return render(
        request,
        "catalog/projects_detail.html",
        status_code,
        view=view,
        project=view.project,
        outcome_labels=projects.outcome_labels(),
        limit=projects.SNAPSHOT_LIMIT,
        unit_label=unit_label,
        **context,
    )


# --- pages ----------------------------------------------------------------------------------------


@get("/projects", guards=[agency], include_in_schema=False)
async def project_list(request: Request, db_session: DbSession, page: FromQuery[int | None] = None) -> Template:
    views, paging = await projects.list_projects(db_session, current(request), page_number(page))
    return render(request, "catalog/projects.html", views=views, page=paging, outcome_labels=projects.outcome_labels())


@post("/projects/save-search", guards=[agency], include_in_schema=False)
async def save_search_page(request: Request, data: FormBody, db_session: DbSession) -> Any:
    form = form_dict(data)
    query = _search_from_form(form)
    try:
        project = await projects.save_from_search(
            db_session, current(request), str(form.get("project") or ""), str(form.get("name") or ""), query
        )
    except Invalid as exc:
        criteria = search.parse_criteria(query) if "search" not in exc.errors else search.Criteria()
        results = await search.search(db_session, criteria, 1)
        saved_to = await projects.active_projects(db_session, current(request))
        marks = await hooks.marks_of(db_session, [hit.service_id for hit in results.hits])
        return render(
            request,
            "catalog/search.html",
            422,
            criteria=criteria,
            results=results,
            marks=marks,
            errors=exc.errors,
            projects=saved_to,
            save_form={"project": form.get("project"), "name": form.get("name")},
        )
    return redirect(
        request, f"/projects/{project.id}", _("The search was saved to the project “%(name)s”.", name=project.name)
    )


@get("/projects/{project_id:int}", guards=[agency], include_in_schema=False)
async def project_page(request: Request, db_session: DbSession, project_id: FromPath[int]) -> Template:
    view = await projects.view_project(db_session, current(request), project_id, cache=search_cache.of(request.app))
    return _project_page(request, view)


@get("/projects/{project_id:int}/end", guards=[agency], include_in_schema=False)
async def end_confirm_page(request: Request, db_session: DbSession, project_id: FromPath[int]) -> Template:
    view = await projects.view_project(db_session, current(request), project_id, cache=search_cache.of(request.app))
    return render(request, "catalog/projects_end.html", view=view, project=view.project, limit=projects.SNAPSHOT_LIMIT)


@post("/projects/{project_id:int}/end", guards=[agency], include_in_schema=False)
async def end_page(request: Request, data: FormBody, db_session: DbSession, project_id: FromPath[int]) -> Any:
    project = await projects.end_search(db_session, current(request), project_id, settings_of(request.app).base_url)
    return redirect(
        request, f"/projects/{project.id}", _("The search has ended; its results are kept as they are now.")
    )


@get("/projects/{project_id:int}/outcome", guards=[agency], include_in_schema=False)
async def outcome_form_page(request: Request, db_session: DbSession, project_id: FromPath[int]) -> Template:
    view = await projects.view_project(db_session, current(request), project_id)
    return render(
        request,
        "catalog/projects_outcome.html",
        view=view,
        project=view.project,
        errors={},
        form={},
        outcome_labels=projects.outcome_labels(),
    )


@post("/projects/{project_id:int}/outcome", guards=[agency], include_in_schema=False)
async def outcome_page(request: Request, data: FormBody, db_session: DbSession, project_id: FromPath[int]) -> Any:
    form = form_dict(data)
    try:
        if form.get("confirm") != "yes":
            raise Invalid(
                _("Please correct: %(fields)s.", fields="confirm"),
                errors={"confirm": _("Confirm that the outcome is final.")},
            )
        values = {key: form.get(key) for key in ("outcome", "service_id", "reason") if form.get(key) is not None}
        if values.get("outcome") != Outcome.awarded:
            values.pop("service_id", None)
        await projects.record_outcome(db_session, current(request), project_id, parse(projects.OutcomeInput, values))
    except Invalid as exc:
        view = await projects.view_project(db_session, current(request), project_id)
        return render(
            request,
            "catalog/projects_outcome.html",
            422,
            view=view,
            project=view.project,
            errors=exc.errors,
            form=form,
            outcome_labels=projects.outcome_labels(),
        )
    return redirect(request, f"/projects/{project_id}", _("The outcome was recorded."))


async def _export(request: Request, db_session: Any, project_id: int, fmt: str) -> Response[bytes]:
    if fmt not in exports.FORMATS:
        raise NotFound(_("Exports are CSV or XLSX."))
    actor = current(request)
    project = await projects.get_project(db_session, actor, project_id)
    if project.status != ProjectStatus.ended:
        raise NotFound(_("Only an ended search can be exported."))
    result = exports.export(project, await projects.snapshot(db_session, project), settings_of(request.app).zone, fmt)
    await projects.record_export(db_session, actor, project, fmt)
    return Response(
        result.content, media_type=result.media_type, headers={"Content-Disposition": result.content_disposition}
    )


@get("/projects/{project_id:int}/export/{fmt:str}", guards=[agency], include_in_schema=False)
async def export_page(
    request: Request, db_session: DbSession, project_id: FromPath[int], fmt: FromPath[str]
) -> Response[bytes]:
    return await _export(request, db_session, project_id, fmt)


# --- API ------------------------------------------------------------------------------------------


@get("/api/projects", guards=[agency], tags=["projects"], summary="The agency's procurement projects")
async def project_list_api(
    request: Request, db_session: DbSession, page: FromQuery[int | None] = None
) -> dict[str, Any]:
    views, paging = await projects.list_projects(db_session, current(request), page_number(page))
    return {
        "total": paging.total,
        "page": paging.number,
        "page_count": paging.count,
        "results": [projects.to_json(view) for view in views],
    }


@post("/api/projects", guards=[agency], tags=["projects"], status_code=201, summary="Create a project with a search")
async def create_api(request: Request, data: ApiInput[projects.ProjectInput], db_session: DbSession) -> dict[str, Any]:
    """Body: `{"name": "...", "query": {"q": "...", "category": ["saas"], "sla": "99.9", ...}}` (search parameters)."""
    project = await projects.create_project(db_session, current(request), parse(projects.ProjectInput, data))
    return projects.to_json(await projects.view_project(db_session, current(request), row_id(project)))


@get(
    "/api/projects/{project_id:int}",
    guards=[agency],
    tags=["projects"],
    summary="A project, with its frozen results once ended",
)
async def project_api(request: Request, db_session: DbSession, project_id: FromPath[int]) -> dict[str, Any]:
    return projects.to_json(
        await projects.view_project(db_session, current(request), project_id, cache=search_cache.of(request.app))
    )


@put("/api/projects/{project_id:int}/search", guards=[agency], tags=["projects"], summary="Replace the active search")
async def save_search_api(
    request: Request, data: ApiInput[projects.SearchInput], db_session: DbSession, project_id: FromPath[int]
) -> dict[str, Any]:
    """Body: `{"query": {...search parameters...}}`. An ended search answers 409."""
    await projects.save_search(db_session, current(request), project_id, parse(projects.SearchInput, data))
    return projects.to_json(await projects.view_project(db_session, current(request), project_id))


@post(
    "/api/projects/{project_id:int}/end", guards=[agency], tags=["projects"], status_code=200, summary="End the search"
)
async def end_api(request: Request, db_session: DbSession, project_id: FromPath[int]) -> dict[str, Any]:
    """Freezes the results (at most 30 services; with more, 409 asks to refine first)."""
    await projects.end_search(db_session, current(request), project_id, settings_of(request.app).base_url)
    return projects.to_json(await projects.view_project(db_session, current(request), project_id))


@post(
    "/api/projects/{project_id:int}/outcome",
    guards=[agency],
    tags=["projects"],
    status_code=200,
    summary="Record the outcome",
)
async def outcome_api(
    request: Request, data: ApiInput[projects.OutcomeInput], db_session: DbSession, project_id: FromPath[int]
) -> dict[str, Any]:
    """Body: `{"outcome": "awarded" | "cancelled" | "none_suitable", "service_id": 12, "reason": "..."}`;
    once and final (a second answers 409)."""
    await projects.record_outcome(db_session, current(request), project_id, parse(projects.OutcomeInput, data))
    return projects.to_json(await projects.view_project(db_session, current(request), project_id))


@get(
    "/api/projects/{project_id:int}/export/{fmt:str}",
    guards=[agency],
    tags=["projects"],
    summary="The ended search as CSV or XLSX",
)
async def export_api(
    request: Request, db_session: DbSession, project_id: FromPath[int], fmt: FromPath[str]
) -> Response[bytes]:
    return await _export(request, db_session, project_id, fmt)


routes = [
    project_list,
    save_search_page,
    project_page,
    end_confirm_page,
    end_page,
    outcome_form_page,
    outcome_page,
    export_page,
    project_list_api,
    create_api,
    project_api,
    save_search_api,
    end_api,
    outcome_api,
    export_api,
]
