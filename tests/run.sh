#!/usr/bin/env bash
# Lint, format and types first (a failure stops the run); then the whole suite on SQLite (with the browser tests)
# and again on PostgreSQL, both at once (see README, "Developing").
# With CI=true, missing Chromium and PostgreSQL are installed from Debian; otherwise their tests are
# skipped with one line saying so. Exit status: non-zero when any leg failed.
set -u
cd "$(dirname "$0")/.."
BIN=.venv/bin
CHROMIUM=/usr/bin/chromium
# Both cores; a file stays on one worker; files go to the workers in collection order, the longest first
# (LONGEST_FIRST in tests/conftest.py), not xdist's default of the files with the most tests first.
PYTEST=("$BIN/python" -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder)
status=0

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# pytest exits 5 when every test was deselected or none exists: nothing failed.
leg() {
  "$@"
  local code=$?
  if [ $code -eq 5 ]; then code=0; fi
  if [ $code -ne 0 ]; then status=$code; fi
}

# The house's habits, before any test: ruff's rules, ruff's format, mypy over the four packages (pyproject.toml).
echo "== ruff check, ruff format --check, mypy"
"$BIN/ruff" check --quiet . || exit 1
"$BIN/ruff" format --check --quiet . || { echo "== files above need \`$BIN/ruff format\`"; exit 1; }
"$BIN/mypy" || exit 1

# Chromium, for the browser tests.
sqlite_marks=()
if [ ! -x "$CHROMIUM" ] && [ "${CI:-}" = "true" ]; then
  echo "== installing Debian's chromium for the browser tests (CI=true)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { as_root apt-get update -qq && as_root apt-get install -y -qq chromium >/dev/null; }; then
    echo "== browser tests FAILED: could not install chromium"
    status=1
  fi
fi
if [ ! -x "$CHROMIUM" ]; then
  [ "${CI:-}" = "true" ] || echo "== browser tests skipped: no Chromium at $CHROMIUM (apt-get install chromium, or run with CI=true to install it)"
  sqlite_marks=(-m "not browser")
fi

# PostgreSQL, for the second leg (found or installed before the legs start, so pytest's summaries end the run).
url=$("$BIN/python" tests/postgres.py)
pg=$?
if [ $pg -ne 0 ]; then
  echo "$url"
  if [ $pg -ne 1 ]; then status=1; fi
fi

if [ $pg -ne 0 ]; then
  echo "== tests on SQLite"
  leg "${PYTEST[@]}" ${sqlite_marks[@]+"${sqlite_marks[@]}"}
  exit $status
fi

# Both legs at once (LEGS_AT_ONCE=0: one after the other): each leg's workers wait on real processes, servers,
# the browser and PostgreSQL, and each ends on its longest file with a worker idle; the other leg fills those gaps.
# Each leg writes its own log, printed whole once both have ended, SQLite's first.
if [ "${LEGS_AT_ONCE:-1}" = "0" ]; then
  echo "== tests on SQLite"
  leg "${PYTEST[@]}" ${sqlite_marks[@]+"${sqlite_marks[@]}"}
  echo "== tests on PostgreSQL (${url##*@})"
  MARKET_TEST_DATABASE_URL="$url" leg "${PYTEST[@]}" -m "not browser and not sqlite_only"
  exit $status
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
echo "== tests on SQLite and on PostgreSQL (${url##*@}) at once; their reports follow when both have ended"
"${PYTEST[@]}" ${sqlite_marks[@]+"${sqlite_marks[@]}"} >"$logs/sqlite" 2>&1 &
sqlite_leg=$!
MARKET_TEST_DATABASE_URL="$url" "${PYTEST[@]}" -m "not browser and not sqlite_only" >"$logs/postgres" 2>&1 &
postgres_leg=$!
leg wait $sqlite_leg
leg wait $postgres_leg
echo "== tests on SQLite"
cat "$logs/sqlite"
echo "== tests on PostgreSQL (${url##*@})"
cat "$logs/postgres"
exit $status
