"""Search and compare, for everyone (listed services only): the pages and their JSON twins.
Procurement projects, for agencies, come from `catalog.controllers_projects`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromQuery
from litestar.response import Template

from catalog import compare, projects, search, search_cache
from catalog.controllers_projects import routes as project_routes
from market import hooks
from market.errors import Invalid
from market.web import DbSession, render


def query_of(request: Request) -> dict[str, list[str]]:
    return request.query_params.dict()


def _viewer(request: Request) -> Any:
    return request.scope.get("user")


# --- search ---------------------------------------------------------------------------------------


@get("/services", include_in_schema=False)
async def search_page(request: Request, db_session: DbSession) -> Template:
    raw = query_of(request)
    viewer = _viewer(request)
    saved_to = await projects.active_projects(db_session, viewer) if viewer else []
    try:
        criteria = search.parse_criteria(raw)
        page = search.parse_page(raw)
    except Invalid as exc:
        fallback = search.Criteria(q=" ".join(str((raw.get("q") or [""])[-1]).split())[: search.MAX_QUERY_LENGTH])
        return render(
            request, "catalog/search.html", 422, criteria=fallback, results=None, errors=exc.errors, projects=saved_to
        )
    results = await search_cache.of(request.app).search(db_session, criteria, page)
    marks = await hooks.marks_of(db_session, [hit.service_id for hit in results.hits])
    return render(
        request, "catalog/search.html", criteria=criteria, results=results, marks=marks, errors={}, projects=saved_to
    )


@get("/api/search", tags=["catalogue"], summary="Search the listed services")
async def search_api(
    request: Request,
    db_session: DbSession,
    q: FromQuery[str | None] = None,
    category: FromQuery[list[str] | None] = None,
    deployment: FromQuery[list[str] | None] = None,
    certification: FromQuery[list[str] | None] = None,
    grade: FromQuery[list[str] | None] = None,
    country: FromQuery[list[str] | None] = None,
    sla: FromQuery[str | None] = None,
    price_max: FromQuery[str | None] = None,
    free_trial: FromQuery[str | None] = None,
    sme: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    page: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Keywords (all required; "a phrase"; -word to exclude) and filters, as on the search page. Answers one
    page of 20 results with highlights, the total, and every facet's counts (each applying the other filters).
    Each result carries its `marks` (a valid certificate: number, validity and its public page). A page beyond
    the last answers 404."""
    raw = query_of(request)
    criteria = search.parse_criteria(raw)
    results = await search_cache.of(request.app).search(db_session, criteria, search.parse_page(raw))
    answer = results.to_json()
    marks = await hooks.marks_of(db_session, [hit.service_id for hit in results.hits])
    for hit in answer["results"]:
        hit["marks"] = [{"kind": mark.kind, "url": mark.url, **mark.data} for mark in marks.get(hit["id"], [])]
    return answer


# --- compare --------------------------------------------------------------------------------------


@get("/compare", include_in_schema=False)
async def compare_page(request: Request, db_session: DbSession) -> Template:
    raw = query_of(request)
    try:
        wanted = compare.parse_request(raw)
    except Invalid as exc:
        return render(
            request,
            "catalog/compare.html",
            422,
            comparison=None,
            errors=exc.errors,
            raw=raw,
            max_services=compare.MAX_SERVICES,
        )
    comparison = await compare.compare(db_session, _viewer(request), wanted)
    return render(
        request,
        "catalog/compare.html",
        comparison=comparison,
        errors={},
        raw=raw,
        max_services=compare.MAX_SERVICES,
        vat_percent=compare.VAT_PERCENT,
        hours_per_month=compare.HOURS_PER_MONTH,
    )


@get("/compare/export", include_in_schema=False)
async def compare_export(request: Request, db_session: DbSession) -> Response[bytes]:
    comparison = await compare.compare(db_session, _viewer(request), compare.parse_request(query_of(request)))
    name = "comparison-" + "-".join(str(service_id) for service_id in comparison.ids) + ".csv"
    return Response(
        compare.to_csv(comparison).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@get("/api/compare", tags=["catalogue"], summary="Compare 2 to 4 services")
async def compare_api(
    request: Request,
    db_session: DbSession,
    ids: FromQuery[list[str] | None] = None,
    quantity: FromQuery[str | None] = None,
    months: FromQuery[str | None] = None,
    project: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Every attribute side by side (`differs` marks rows whose values are not all the same) and, for the
    quantity and months given, each plan's monthly and total cost with VAT separate. With `project`, the
    versions frozen by that project's ended search (agencies only)."""
    comparison = await compare.compare(db_session, _viewer(request), compare.parse_request(query_of(request)))
    return comparison.to_json()


routes = [search_page, search_api, compare_page, compare_export, compare_api, *project_routes]
