"""`make bench` (python -m bench): every benchmark, each beside its floor measured in the same run.

    python -m bench                                  # all, at the defaults (N=100000, SEED=20261123)
    python -m bench --only catalogue,service         # some of them
    python -m bench --only signing --skip-load       # on the data of the previous run

Benchmarks (modules of this package): search (GET /api/search against the same SQL through the driver),
catalogue (the catalogue's JSON page against a bare ASGI app returning the same bytes), service (a service's
page against the same lookup through the driver), pages (every page's server time, as each role, one client),
signing (contract signatures over HTTP with 16 clients against the same transaction through the driver).

The catalogue is generated into PostgreSQL first (by `search`, or here when it is not chosen) unless
--skip-load; the demo data is added to it for the pages. Environment: BENCH_DATABASE_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/market_bench; its schema is dropped and rebuilt), BENCH_SQLITE.
Each benchmark prints a table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import catalogue, load, pages, search, service_page, signing
from bench.server import ROOT, postgres_url

BENCHMARKS = {"search": search, "catalogue": catalogue, "service": service_page, "pages": pages, "signing": signing}


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH", ",".join(BENCHMARKS)),
        help=f"comma-separated, in this order: {','.join(BENCHMARKS)} (default: all, or $BENCH)",
    )
    parser.add_argument(
        "--n", type=int, default=int(os.environ.get("N", "100000")), help="listings to generate (default 100000 or $N)"
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "20261123")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS", "2")),
        help="server processes (default 2: one per core)",
    )
    parser.add_argument("--skip-load", action="store_true", help="reuse the data already loaded")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the app's workers with py-spy while they are measured (bench/results/profiles/)",
    )
    for module in BENCHMARKS.values():
        module.add_arguments(parser)
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.perf_counter()
    written = []
    searched_postgres = "search" in chosen and "postgresql" in args.databases.split(",")
    if not args.skip_load and not searched_postgres and set(chosen) - {"search"}:
        print(f"loading {args.n} listings into PostgreSQL ({postgres_url().split('@')[-1]}) ...", flush=True)
        print(f"  {load.load_postgres(postgres_url(), args.seed, args.n, max(50, args.n // 250)):.1f} s", flush=True)
    for name in BENCHMARKS:  # in a fixed order: signing writes, so it comes last
        if name not in chosen:
            continue
        print(f"\n== {name} ==", flush=True)
        if name in ("catalogue", "service", "pages", "signing") and "demo" not in written:
            load.load_demo(postgres_url())
            written.append("demo")
        written.append(str(BENCHMARKS[name].run(args).relative_to(ROOT)))
    print(
        f"\nwritten: {', '.join(path for path in written if path != 'demo')} ({time.perf_counter() - started:.0f} s in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
