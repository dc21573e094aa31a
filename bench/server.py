"""What every benchmark shares: the server processes it measures (`market serve`, or the bare ASGI floor),
percentiles, the load generator (wrk, installed from Debian when missing) and the record of the machine."""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MARKET = Path(sys.executable).parent / "market"
UVICORN = Path(sys.executable).parent / "uvicorn"
DATA_DIR = ROOT / "var" / "bench"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/market_bench"


def postgres_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


class Server:
    """A server in its own process group, answering on a free loopback port: `market serve` by default, or
    any command given (the bare floor), with `{port}` in it replaced."""

    def __init__(
        self, database_url: str, workers: int, command: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            "MARKET_DATABASE_URL": database_url,
            "MARKET_DATA_DIR": str(DATA_DIR),
            "MARKET_WORKER": "off",
            "MARKET_SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(48),
            "MARKET_LOG_LEVEL": "WARNING",
            "MARKET_ENV": "production",
            # one client sends thousands of requests a minute here: the API's per-caller limit would answer 429
            "MARKET_API_REQUESTS_PER_MINUTE": "100000000",
            **(env or {}),
        }
        self.secret_key = environment["MARKET_SECRET_KEY"]
        if command is None:
            command = [str(MARKET), "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", str(workers)]
        self.process = subprocess.Popen(
            [part.replace("{port}", str(self.port)) for part in command],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, seconds: float = 120, path: str = "/healthz") -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the server did not answer {path} in time")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor), for the profiler."""
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in found]

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server's processes so far (the supervisor and its workers): unlike a
        rate or a latency, CPU per request does not change when other processes share the cores."""
        total = 0.0
        for pid in [self.process.pid, *self.worker_pids()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


def bare_server(body: bytes, headers: list[tuple[str, str]], workers: int) -> Server:
    """The floor of an HTTP figure: a bare ASGI app under the same uvicorn (workers, HTTP parser, event loop)
    that answers every request with the given bytes and headers."""
    folder = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    (folder / "body").write_bytes(body)
    (folder / "headers.json").write_text(json.dumps(headers))
    return Server(
        "",
        workers,
        command=[
            str(UVICORN),
            "bench.bare:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            str(workers),
            "--no-proxy-headers",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={"BENCH_BARE_DIR": str(folder), "PYTHONPATH": str(ROOT)},
    )


# --- the load generator ----------------------------------------------------------------------------

WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format('\\nBENCH {"requests": %d, "seconds": %.6f, "errors_status": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_timeout": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""


def ensure_wrk() -> str | None:
    """wrk's path, installing Debian's package when missing and allowed (root); None when it cannot be had."""
    found = shutil.which("wrk")
    if found or os.environ.get("BENCH_NO_INSTALL"):
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install -y wrk) ...", flush=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
        if not shutil.which("wrk"):
            subprocess.run(
                ["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
            )
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
    return shutil.which("wrk")


def measure(server: Server, url: str, database_url: str = "", **options: Any) -> dict[str, Any]:
    """`wrk(url, **options)`, with the server's CPU milliseconds per request added, and PostgreSQL's (the
    backends serving `database_url`, when the server is local)."""
    backends = database_backends(database_url) if database_url else {}
    before = server.cpu_seconds()
    result = wrk(url, **options)
    result["server_cpu_ms_per_request"] = round((server.cpu_seconds() - before) * 1000 / max(result["requests"], 1), 3)
    if database_url:
        after = database_backends(database_url)
        used = sum(cpu - backends.get(pid, 0.0) for pid, cpu in after.items())
        result["database_cpu_ms_per_request"] = round(used * 1000 / max(result["requests"], 1), 3)
    return result


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a local process; 0 where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends(database_url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the database of `database_url`."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    async def read() -> list[int]:
        parsed = make_url(database_url)
        connection = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            return [
                row[0]
                for row in await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", parsed.database
                )
            ]
        finally:
            await connection.close()

    return {pid: process_cpu_seconds(pid) for pid in asyncio.run(read())}


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    paths: list[str] | None = None,
) -> dict[str, Any]:
    """Requests per second and latency percentiles (milliseconds) from wrk; with `paths`, each request takes
    the next path of the list, round robin."""
    binary = ensure_wrk()
    if binary is None:
        return python_load(url, connections=connections, seconds=seconds, headers=headers, paths=paths)
    script = WRK_REPORT
    if paths:
        listed = ", ".join(json.dumps(path) for path in paths)
        script = (
            f"local paths = {{{listed}}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n"
            + script
        )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    command = [
        binary,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        lua.name,
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    Path(lua.name).unlink(missing_ok=True)
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    raw = json.loads(line[len("BENCH ") :])
    errors = sum(value for key, value in raw.items() if key.startswith("errors_"))
    return {
        "generator": "wrk",
        "connections": connections,
        "seconds": round(raw["seconds"], 2),
        "requests": raw["requests"],
        "requests_per_second": round(raw["requests"] / raw["seconds"], 1),
        "errors": errors,
        **{
            key.replace("_us", "_ms"): round(raw[key] / 1000, 2)
            for key in ("p50_us", "p90_us", "p95_us", "p99_us", "max_us")
        },
    }


def python_load(
    url: str, *, connections: int, seconds: float, headers: dict[str, str] | None = None, paths: list[str] | None = None
) -> dict[str, Any]:
    """The fallback generator: async httpx clients in a separate process (bench.loadgen)."""
    spec = json.dumps(
        {"url": url, "connections": connections, "seconds": seconds, "headers": headers or {}, "paths": paths or ["/"]}
    )
    output = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", spec], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def save(name: str, report: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = report.get("started_at") or datetime.now(UTC).isoformat(timespec="seconds")
    stamp = datetime.fromisoformat(started).strftime("%Y%m%d-%H%M%S")
    target = RESULTS / f"{stamp}-{name}.json"
    report["machine"] = {**report.get("machine", {}), "load_average_after": os.getloadavg()}
    target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return target


# --- the profiler ----------------------------------------------------------------------------------


class Profile:
    """With `--profile`: py-spy samples every worker of `server` for `seconds` (the measurement's length),
    writing collapsed stacks under bench/results/profiles/ (open with speedscope, or read `top_frames`)."""

    def __init__(self, enabled: bool, server: Server, name: str, seconds: float) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.files: list[Path] = []
        spy = Path(sys.executable).parent / "py-spy"
        if not enabled or not spy.exists():
            return
        folder = RESULTS / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        for pid in server.worker_pids():
            if "resource_tracker" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                continue
            target = folder / f"{stamp}-{name}-{pid}.txt"
            self.files.append(target)
            self.processes.append(
                subprocess.Popen(
                    [
                        str(spy),
                        "record",
                        "-p",
                        str(pid),
                        "-d",
                        str(int(seconds)),
                        "-r",
                        "100",
                        "-f",
                        "raw",
                        "-o",
                        str(target),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def __enter__(self) -> Profile:
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.processes:
            process.wait()
        for target in self.files:
            if target.exists():
                print(f"  profile: {target.relative_to(ROOT)}", flush=True)
                print("\n".join(f"    {line}" for line in top_frames(target, 12)), flush=True)


def top_frames(collapsed: Path, count: int = 15) -> list[str]:
    """The frames of our own code and of the libraries on which most samples were inside (inclusive share)."""
    from collections import Counter

    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        total += int(samples)
        for frame in set(stack.split(";")):
            inclusive[frame] += int(samples)
    skip = (
        "<module>",
        "asyncio",
        "uvicorn/",
        "multiprocessing/",
        "threading.py",
        "litestar/middleware",
        "litestar/_asgi",
        "litestar/app.py",
        "market/app.py:2",
        "litestar/routes",
    )
    found = [(frame, samples) for frame, samples in inclusive.most_common() if not any(part in frame for part in skip)]
    return [f"{100 * samples / max(total, 1):5.1f} %  {frame}" for frame, samples in found[:count]]
