"""The open register's pages (no sign-in), its CSV, and the OCDS feed under /api/ocds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

import committee
from contracts import dashboards, ocds, register  # noqa: F401  dashboards registers the home panels, ocds its subscribers
from market import clock
from market.errors import Invalid
from market.i18n import _
from market.web import DbSession, page_number, parse, render

PAGE: dict[str, Any] = {"include_in_schema": False}
OCDS_API: dict[str, Any] = {"tags": ["ocds"]}


def _settings(request: Request) -> Any:
    from market.state import settings_of

    return settings_of(request.app)


def _query(**raw: str | None) -> register.RegisterQuery:
    return parse(register.RegisterQuery, {key: value for key, value in raw.items() if value is not None})


def _url(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


@get("/contracts/register", **PAGE)
async def register_page(
    request: Request,
    db_session: DbSession,
    q: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    route: FromQuery[str | None] = None,
    category: FromQuery[str | None] = None,
    agency: FromQuery[str | None] = None,
    year: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    page: FromQuery[int | None] = None,
) -> Template:
    zone = _settings(request).zone
    query = _query(q=q, status=status, route=route, category=category, agency=agency, year=year, sort=sort)
    rows, paging = await register.search(db_session, query, page_number(page), zone)
    params = query.params()
    return render(
        request,
        "contracts/register.html",
        rows=rows,
        page=paging,
        query=query,
        filtered=bool(query.params(sort="newest")),
        page_url=_url("/contracts/register", params),
        csv_url=_url("/contracts/register.csv", params),
        statuses=register.status_options(),
        routes=register.route_options(),
        categories=register.category_options(),
        agencies=await register.agency_options(db_session),
        years=await register.year_options(db_session, zone),
        sorts=register.sort_options(),
        sort_urls={key: _url("/contracts/register", query.params(sort=key)) for key, _label in register.sort_options()},
    )


@get("/contracts/register.csv", **PAGE)
async def register_csv(
    request: Request,
    db_session: DbSession,
    q: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    route: FromQuery[str | None] = None,
    category: FromQuery[str | None] = None,
    agency: FromQuery[str | None] = None,
    year: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
) -> Response[str]:
    zone = _settings(request).zone
    query = _query(q=q, status=status, route=route, category=category, agency=agency, year=year, sort=sort)
    rows = await register.all_rows(db_session, query, zone)
    day = clock.today(zone).isoformat()
    return Response(
        "\ufeff" + register.csv_text(rows, zone),
        media_type="text/csv; charset=utf-8",  # the mark lets spreadsheets read Hangul as UTF-8
        headers={"Content-Disposition": f'attachment; filename="{day}-contract-register.csv"'},
    )


@get("/contracts/register/statistics", **PAGE)
async def statistics_page(request: Request, db_session: DbSession, year: FromQuery[str | None] = None) -> Template:
    zone = _settings(request).zone
    query = _query(year=year)
    figures = await register.statistics(db_session, zone, query.year)
    return render(
        request,
        "contracts/register_statistics.html",
        stats=figures,
        year=query.year,
        years=await register.year_options(db_session, zone),
    )


@get("/contracts/register/{number:str}", **PAGE)
async def register_entry_page(request: Request, db_session: DbSession, number: FromPath[str]) -> Template:
    entry = await register.entry(db_session, number)
    certificate = await _certificate(db_session, entry.row.service_id)
    return render(
        request,
        "contracts/register_entry.html",
        entry=entry,
        row=entry.row,
        certificate=certificate,
        ocid=ocds.ocid(entry.row.number),
        billing_label=_billing_label(entry.billing_period),
    )


def _billing_label(period: str) -> str:
    labels = {"monthly": _("Monthly"), "quarterly": _("Quarterly"), "once": _("One payment")}
    return labels.get(period, period)


async def _certificate(db_session: Any, service_id: int) -> Any:
    return await committee.certificate_of_service(db_session, service_id)


@get("/api/contracts/register", tags=["register"])
async def register_api(
    request: Request,
    db_session: DbSession,
    q: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    route: FromQuery[str | None] = None,
    category: FromQuery[str | None] = None,
    agency: FromQuery[str | None] = None,
    year: FromQuery[str | None] = None,
    sort: FromQuery[str | None] = None,
    page: FromQuery[int | None] = None,
) -> dict[str, Any]:
    """The public contract register, 20 contracts a page, with the page's filters (no sign-in needed)."""
    zone = _settings(request).zone
    query = _query(q=q, status=status, route=route, category=category, agency=agency, year=year, sort=sort)
    rows, paging = await register.search(db_session, query, page_number(page), zone)
    return {
        "total": paging.total,
        "page": paging.number,
        "pages": paging.count,
        "contracts": [register.row_json(row) for row in rows],
    }


# --- OCDS ------------------------------------------------------------------------------------------------


def _moment(field: str, raw: str | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """An ISO date (a whole day in the marketplace's zone; `until` includes it) or date-time (UTC when no zone)."""
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            _("Please correct: %(fields)s.", fields=field),
            errors={field: _("Enter a date (YYYY-MM-DD) or a date and time (ISO 8601).")},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _feed_number(field: str, raw: str | None, default: int, lowest: int, highest: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(
            _("Please correct: %(fields)s.", fields=field), errors={field: _("Enter a whole number.")}
        ) from None
    if not lowest <= value <= highest:
        raise Invalid(_("Please correct: %(fields)s.", fields=field), errors={field: _("The number is out of range.")})
    return value


@get("/api/ocds/releases", **OCDS_API)
async def ocds_releases(
    request: Request,
    db_session: DbSession,
    after: FromQuery[str | None] = None,
    limit: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """An OCDS 1.1 release package of the register's changes, oldest first.

    Follow `links.next` to page: its `after` cursor is the last release's position in the feed, so polling it
    later returns exactly the changes published since, none missed or repeated. `since` and `until` (ISO dates or
    date-times) narrow the feed by release date.
    """
    zone = _settings(request).zone
    cursor = _feed_number("after", after, 0, 0, 2**62)
    size = _feed_number("limit", limit, ocds.FEED_PAGE_SIZE, 1, ocds.FEED_PAGE_MAX)
    start, stop = _moment("since", since, zone, end=False), _moment("until", until, zone, end=True)
    rows, next_cursor = await ocds.releases_page(db_session, after=cursor, limit=size, since=start, until=stop)
    base = str(request.base_url).rstrip("/")
    params = {
        "after": str(next_cursor),
        "limit": str(size),
        **{k: v for k, v in (("since", since), ("until", until)) if v},
    }
    return ocds.release_package(
        rows, uri=str(request.url), base_url=base, next_uri=f"{base}/api/ocds/releases?{urlencode(params)}"
    )


@get("/api/ocds/records/{ocid:str}", **OCDS_API)
async def ocds_record(request: Request, db_session: DbSession, ocid: FromPath[str]) -> dict[str, Any]:
    """The OCDS 1.1 record package of one contracting process (one contract): its releases and the compiled release."""
    base = str(request.base_url).rstrip("/")
    return await ocds.record_package(db_session, ocid, uri=str(request.url), base_url=base)


def routes() -> list[Any]:
    return [register_page, register_csv, statistics_page, register_entry_page, register_api, ocds_releases, ocds_record]
