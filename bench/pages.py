"""Every page's server time (`python -m bench --only pages`): every GET page route of the application (from its
route table: not /api, /static, /schema, /healthz), as each role of the demo (a visitor, an agency buyer, a
provider, the committee's chair and a member, the operator), on the demo data added to the generated
catalogue, against `market serve --workers 2` on PostgreSQL. Path parameters are filled from the database
(the demo's own services, contracts, cases ... first); a route is measured for a role with the first value
it answers 200 for, and listed with its answer otherwise (a page of another role, a form for a state the
record is not in, a one-off token).

Light load: one client, requests one after the other over a kept-alive loopback connection. Server time is
measured on the client (loopback, one client: the time from sending the request to the last byte, which on
loopback adds well under a millisecond to the server's own). Target: p95 under 100 ms for every page.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import load
from bench.server import Server, machine, percentile, postgres_url, save

TARGET_P95_MS = 100.0
PASSWORD = "demo-password-2026"
ROLES = [
    ("visitor", None),
    ("agency", "buyer@seoul.example.go.kr"),
    ("provider", "provider@hanbit-cloud.example.kr"),
    ("committee chair", "chair@demo.example.go.kr"),
    ("committee member", "committee@demo.example.go.kr"),
    ("operator", "operator@demo.example.go.kr"),
]
SKIPPED_PREFIXES = ("/api", "/static", "/schema", "/healthz")
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
DEMO_ORGANISATIONS = (
    "SELECT organisation_id FROM user_account WHERE email IN ("
    + ", ".join(f"'{email}'" for _, email in ROLES if email)
    + ", 'buyer@mois.example.go.kr', "
    "'provider@nurisoft.example.kr', 'provider@baramdata.example.kr')"
)
# candidate values of each path parameter, the demo's first
CANDIDATES = {
    "service_id": f"SELECT id FROM catalog_service ORDER BY provider_id IN ({DEMO_ORGANISATIONS}) DESC, id LIMIT 40",
    "document_id": "SELECT id FROM catalog_document ORDER BY id LIMIT 20",
    "project_id": "SELECT id FROM catalog_project ORDER BY id LIMIT 20",
    "case_id": "SELECT id FROM committee_case ORDER BY id LIMIT 20",
    "meeting_id": "SELECT id FROM committee_session ORDER BY id LIMIT 10",
    "contract_id": f"SELECT id FROM contracts_contract ORDER BY agency_id IN ({DEMO_ORGANISATIONS}) DESC, id LIMIT 30",
    "invoice_id": "SELECT id FROM contracts_invoice ORDER BY id LIMIT 20",
    "organisation_id": f"SELECT id FROM organisation ORDER BY id IN ({DEMO_ORGANISATIONS}) DESC, id LIMIT 10",
    "domain_id": "SELECT id FROM agency_domain ORDER BY id LIMIT 5",
    "appointment_id": "SELECT id FROM appointment ORDER BY id LIMIT 5",
    "token_id": f"SELECT id FROM api_token WHERE user_id IN (SELECT id FROM user_account WHERE organisation_id IN ({DEMO_ORGANISATIONS})) "
    "ORDER BY id LIMIT 5",
    "certificate_number": "SELECT number FROM committee_certificate ORDER BY id LIMIT 10",
    "contract_number": f"SELECT number FROM contracts_contract WHERE status IN ('signed', 'active', 'completed', 'terminated') "
    f"ORDER BY agency_id IN ({DEMO_ORGANISATIONS}) DESC, id LIMIT 10",
}
FIXED = {"fmt": ["csv", "xlsx"], "number:int": ["1", "2", "3"], "token": ["not-a-real-token"]}
# pages that read their query: measured with one
QUERIES = {"/compare": "?ids={a}&ids={b}", "/compare/export": "?ids={a}&ids={b}", "/contracts/new": "?service_id={a}"}
EXTRA = ["/services?q=backup", "/services?q=quantum&deployment=public"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pages")
    group.add_argument(
        "--page-requests",
        type=int,
        default=20,
        help="measured requests per page and role (default 20, after 2 warm-ups)",
    )


def page_routes() -> list[str]:
    from litestar.routes import HTTPRoute

    from market.app import create_app

    app = create_app(check_schema=False)  # for its route table only; it also sets the log up, at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    found = []
    for route in app.routes:
        if (
            isinstance(route, HTTPRoute)
            and not route.path.startswith(SKIPPED_PREFIXES)
            and any("GET" in handler.http_methods for handler in route.route_handlers)
        ):
            found.append(route.path)
    return sorted(set(found))


async def candidates(database_url: str) -> dict[str, list[str]]:
    connection = await asyncpg.connect(load.asyncpg_dsn(database_url))
    try:
        return {name: [str(row[0]) for row in await connection.fetch(sql)] for name, sql in CANDIDATES.items()}
    finally:
        await connection.close()


def _values(path: str, name: str, kind: str, found: dict[str, list[str]]) -> list[str]:
    if name == "number" and kind == "str":
        return found["certificate_number" if path.startswith("/certificates") else "contract_number"]
    return FIXED.get(f"{name}:{kind}") or FIXED.get(name) or found.get(name, [])


def addresses(path: str, found: dict[str, list[str]], tries: int = 12) -> list[str]:
    """Concrete addresses to try for a route, first parameter varying (the others take their first value)."""
    parameters = PARAMETER.findall(path)
    query = QUERIES.get(path, "")
    if query:
        services = found["service_id"]
        query = query.format(a=services[0], b=services[1])
    if not parameters:
        return [path + query]
    choices = [_values(path, name, kind, found) for name, kind in parameters]
    if any(not values for values in choices):
        return []
    result = []
    for first in choices[0][:tries]:
        concrete = path
        for index, (name, kind) in enumerate(parameters):
            concrete = concrete.replace(f"{{{name}:{kind}}}", first if index == 0 else choices[index][0], 1)
        result.append(concrete + query)
    return result


async def ensure_projects(url: str, database_url: str) -> list[str]:
    """The demo has no procurement project: the agency makes two through the API (an API token written for
    it), one left open and one ended with its results frozen, unless it has some already."""
    import hashlib
    import secrets

    connection = await asyncpg.connect(load.asyncpg_dsn(database_url))
    try:
        user = await connection.fetchrow(
            "SELECT id, organisation_id FROM user_account WHERE email = $1", "buyer@seoul.example.go.kr"
        )
        if await connection.fetchval(
            "SELECT count(*) FROM catalog_project WHERE agency_id = $1", user["organisation_id"]
        ):
            return []
        token = "bench-pages-" + secrets.token_urlsafe(16)
        await connection.execute(
            "INSERT INTO api_token (user_id, name, token_hash, prefix, created_at) VALUES ($1, 'bench pages', $2, $3, now())",
            user["id"],
            hashlib.sha256(token.encode()).hexdigest(),
            token[:8],
        )
    finally:
        await connection.close()
    made = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for name, query, end in (
            ("Records archive (open)", {"q": "archive", "deployment": ["public"]}, False),
            ("Quantum-safe storage (ended)", {"q": "quantum", "deployment": ["private"]}, True),
        ):
            answer = await client.post("/api/projects", json={"name": name, "query": query})
            answer.raise_for_status()
            made.append(str(answer.json()["id"]))
            if end:
                (await client.post(f"/api/projects/{made[-1]}/end")).raise_for_status()
    return made


def login(client: httpx.Client, email: str) -> None:
    form = client.get("/login")
    token = CSRF_FIELD.search(form.text)
    if token is None:
        raise RuntimeError("no CSRF field on /login")
    answer = client.post(
        "/login", data={"_csrf_token": token.group(1), "email": email, "password": PASSWORD}, follow_redirects=False
    )
    if answer.status_code != 303:
        raise RuntimeError(f"login as {email} answered {answer.status_code}")


def measure_role(
    url: str, role: str, email: str | None, routes: list[str], found: dict[str, list[str]], requests: int
) -> list[dict[str, Any]]:
    results = []
    with httpx.Client(base_url=url, timeout=60, headers={"Accept": "text/html"}) as client:
        if email:
            login(client, email)
        for route in [*routes, *EXTRA]:
            tried: list[tuple[str, int]] = []
            chosen = None
            for address in addresses(route, found) if route not in EXTRA else [route]:
                status = client.get(address, follow_redirects=False).status_code
                tried.append((address, status))
                if status == 200:
                    chosen = address
                    break
            if chosen is None:
                last = tried[-1] if tried else ("", 0)
                results.append({"role": role, "route": route, "address": last[0], "status": last[1], "measured": False})
                continue
            client.get(chosen)
            latencies = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(chosen, follow_redirects=False)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{role} {chosen}: {response.status_code} after 200")
            results.append(
                {
                    "role": role,
                    "route": route,
                    "address": chosen,
                    "status": 200,
                    "measured": True,
                    "requests": requests,
                    "bytes": len(response.content),
                    "p50_ms": round(percentile(latencies, 0.5), 1),
                    "p95_ms": round(percentile(latencies, 0.95), 1),
                    "max_ms": round(max(latencies), 1),
                }
            )
    return results


def run(args: argparse.Namespace) -> Path:
    started = datetime.now(UTC)
    database_url = postgres_url()
    routes = page_routes()
    report: dict[str, Any] = {
        "benchmark": "pages",
        "started_at": started.isoformat(timespec="seconds"),
        "n": args.n,
        "seed": args.seed,
        "server_workers": args.workers,
        "requests_per_page": args.page_requests,
        "machine": machine(),
        "target_p95_ms": TARGET_P95_MS,
        "routes": routes,
        "results": [],
    }
    server = Server(database_url, args.workers)
    try:
        server.wait()
        report["projects_made"] = asyncio.run(ensure_projects(server.url, database_url))
        found = asyncio.run(candidates(database_url))
        for role, email in ROLES:
            measured = measure_role(server.url, role, email, routes, found, args.page_requests)
            report["results"] += measured
            slow = [r for r in measured if r["measured"] and r["p95_ms"] >= TARGET_P95_MS]
            print(
                f"  {role:17} {sum(r['measured'] for r in measured):3} pages measured, {len(slow)} over {TARGET_P95_MS:g} ms",
                flush=True,
            )
    finally:
        server.stop()
    measured = [r for r in report["results"] if r["measured"]]
    report["pages_measured"] = len(measured)
    report["routes_measured"] = len({r["route"] for r in measured})
    report["over_target"] = [
        f"{r['role']} {r['address']} {r['p95_ms']} ms" for r in measured if r["p95_ms"] >= TARGET_P95_MS
    ]
    report["target_met"] = not report["over_target"]
    target = save("pages", report)
    print(table(report))
    return target


def table(report: dict[str, Any]) -> str:
    measured = sorted((r for r in report["results"] if r["measured"]), key=lambda r: -r["p95_ms"])
    lines = [f"{'role':17} {'page':58} {'p50 ms':>7} {'p95 ms':>7} {'kB':>6}"]
    for r in measured:
        lines.append(
            f"{r['role']:17} {r['address'][:58]:58} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} {r['bytes'] / 1024:6.1f}"
        )
    never = sorted({r["route"] for r in report["results"]} - {r["route"] for r in measured})
    lines.append(
        f"{report['pages_measured']} (role, page) pairs over {report['routes_measured']} of {len(report['routes'])} routes; "
        f"not answering 200 for any role: {', '.join(never) or 'none'}"
    )
    verdict = "met" if report["target_met"] else f"MISSED by {len(report['over_target'])}"
    lines.append(f"target p95 < {TARGET_P95_MS:g} ms on every page: {verdict}")
    return "\n".join(lines)
