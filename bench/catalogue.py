"""Catalogue JSON page (`python -m bench --only catalogue`): GET /api/search with no keyword and no filter (the
catalogue's first page of 20 services, its total and every facet's counts) under wrk, against `market serve
--workers 2` on the PostgreSQL catalogue, and against the floor: a bare ASGI app under the same uvicorn
(2 workers) answering the same bytes. Target: at least 8,000 requests per second."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.server import Profile, Server, bare_server, machine, measure, postgres_url, save, wrk

PATH = "/api/search"
TARGET_RPS = 8_000
KEPT_HEADERS = (
    "content-type",
    "cache-control",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("catalogue, service page")
    group.add_argument("--seconds", type=int, default=10, help="wrk's duration per measurement (default 10)")
    group.add_argument("--connections", type=int, default=16, help="wrk's open connections (default 16)")


def run(args: argparse.Namespace) -> Path:
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "benchmark": "catalogue",
        "started_at": started.isoformat(timespec="seconds"),
        "n": args.n,
        "seed": args.seed,
        "path": PATH,
        "server_workers": args.workers,
        "machine": machine(),
        "target_rps": TARGET_RPS,
    }
    server = Server(postgres_url(), args.workers)
    try:
        server.wait()
        answer = httpx.get(server.url + PATH, headers={"Accept": "application/json"}, timeout=30)
        answer.raise_for_status()
        body = answer.content
        headers = [(name, value) for name, value in answer.headers.items() if name.lower() in KEPT_HEADERS]
        report["body_bytes"] = len(body)
        report["total"] = answer.json().get("total")
        wrk(
            server.url + PATH, connections=args.connections, seconds=2, headers={"Accept": "application/json"}
        )  # warm-up
        with Profile(args.profile, server, "catalogue", args.seconds):
            report["app"] = measure(
                server,
                server.url + PATH,
                postgres_url(),
                connections=args.connections,
                seconds=args.seconds,
                headers={"Accept": "application/json"},
            )
    finally:
        server.stop()
    print(
        f"  catalogue app : {report['app']['requests_per_second']:9.1f} req/s  p99 {report['app']['p99_ms']:7.1f} ms",
        flush=True,
    )
    bare = bare_server(body, headers, args.workers)
    try:
        bare.wait(path=PATH)
        wrk(bare.url + PATH, connections=args.connections, seconds=2)
        report["bare"] = measure(
            bare,
            bare.url + PATH,
            connections=args.connections,
            seconds=args.seconds,
            headers={"Accept": "application/json"},
        )
    finally:
        bare.stop()
    print(
        f"  catalogue bare: {report['bare']['requests_per_second']:9.1f} req/s  p99 {report['bare']['p99_ms']:7.1f} ms",
        flush=True,
    )
    report["ratio_to_bare"] = round(report["app"]["requests_per_second"] / report["bare"]["requests_per_second"], 4)
    report["target_met"] = report["app"]["requests_per_second"] >= TARGET_RPS
    target = save("catalogue", report)
    print(table(report))
    return target


def table(report: dict[str, Any]) -> str:
    lines = [f"{'catalogue JSON page':24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'CPU ms/req':>10}"]
    for key, label in (("app", "market serve (2 workers)"), ("bare", "bare ASGI, same bytes")):
        row = report[key]
        lines.append(
            f"{label:24} {row['requests_per_second']:9.1f} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['errors']:>6} {row['server_cpu_ms_per_request']:10.2f}"
        )
    verdict = "met" if report["target_met"] else "MISSED"
    lines.append(
        f"PostgreSQL CPU {report['app'].get('database_cpu_ms_per_request')} ms a request (the app's statements: the search when not kept, the certificate marks)"
    )
    lines.append(f"ratio to the bare app {report['ratio_to_bare']:.3f}; target >= {TARGET_RPS} req/s: {verdict}")
    return "\n".join(lines)
