"""Find (or, under CI=true, install and start) the PostgreSQL server for the second test leg.

Prints the database URL and exits 0; or prints one line saying why the leg is skipped and exits 1;
or, when CI=true and the server cannot be had, prints why and exits 2 (the run fails).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

import asyncpg

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
DATABASE = "market_test"
ADMIN_DSN = f"postgresql://{USER}@{HOST}:{PORT}/postgres"
URL = f"postgresql+asyncpg://{USER}@{HOST}:{PORT}/{DATABASE}"
TRUST_MARK = "# market tests: trust loopback"


class Refused(Exception):
    """The server answers but will not let us in (password required, no such role ...)."""


async def _connect_and_create() -> bool:
    """True when the server answers and the test database exists (created if missing); False when nothing listens."""
    try:
        connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (TimeoutError, OSError):
        return False
    except asyncpg.PostgresError as exc:
        raise Refused(f"{type(exc).__name__}: {exc}") from exc
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await connection.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await connection.close()
    return True


def _ready() -> bool:
    return asyncio.run(_connect_and_create())


def _as_root(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return command
    if shutil.which("sudo"):
        return ["sudo", "-n", *command]
    raise RuntimeError("installing postgresql needs root (or sudo)")


def _install_and_start() -> None:
    """Debian's postgresql, with trust auth on loopback as on CI machines."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not os.path.isdir("/etc/postgresql"):
        print("== PostgreSQL not answering; installing Debian's postgresql (CI=true)", file=sys.stderr, flush=True)
        subprocess.run(_as_root(["apt-get", "update", "-qq"]), check=False, env=environment, **quiet)
        subprocess.run(
            _as_root(["apt-get", "install", "-y", "-qq", "postgresql"]), check=True, env=environment, **quiet
        )
    version = sorted(os.listdir("/etc/postgresql"), key=lambda name: int(name) if name.isdigit() else 0)[-1]
    hba = f"/etc/postgresql/{version}/main/pg_hba.conf"
    with open(hba) as handle:
        rules = handle.read()
    if TRUST_MARK not in rules:
        trust = f"{TRUST_MARK}\nlocal all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        subprocess.run(_as_root(["tee", hba]), input=(trust + rules).encode(), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        _as_root(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]), check=False, **quiet
    )


def _install_and_wait() -> int:
    _install_and_start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _ready():
                print(URL)
                return 0
        except Refused:
            pass  # still starting up with the old rules
        time.sleep(0.5)  # poll interval while the cluster starts
    print(
        f"== PostgreSQL leg FAILED: installed postgresql but it does not let {USER} in at {HOST}:{PORT} with trust auth"
    )
    return 2


def main() -> int:
    explicit = os.environ.get("MARKET_TEST_DATABASE_URL")
    if explicit:
        print(explicit)
        return 0
    in_ci = os.environ.get("CI") == "true"
    try:
        try:
            if _ready():
                print(URL)
                return 0
        except Refused as exc:
            if not (in_ci and os.path.isdir("/etc/postgresql")):
                print(
                    f"== PostgreSQL leg {'FAILED' if in_ci else 'skipped'}: the server at {HOST}:{PORT} refuses user {USER} "
                    f"without a password ({exc}); allow trust auth on loopback or set MARKET_TEST_DATABASE_URL"
                )
                return 2 if in_ci else 1
            return _install_and_wait()  # Debian's own server: add the trust rules and restart it
        if not in_ci:
            print(
                f"== PostgreSQL leg skipped: no server at {HOST}:{PORT} (user {USER}, trust auth). Start one, set "
                "MARKET_TEST_DATABASE_URL=postgresql+asyncpg://user@host:port/db, or run with CI=true to install it."
            )
            return 1
        return _install_and_wait()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"== PostgreSQL leg FAILED: could not install or start postgresql ({exc})")
        return 2


if __name__ == "__main__":
    sys.exit(main())
