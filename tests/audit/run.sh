#!/usr/bin/env bash
# The GraphQL-over-HTTP audit end to end: install the pinned audit suite, create a source and
# an integration in a fresh SQLite file, serve it on a free loopback port, run every audit with
# the integration's token, stop the server. Exit status is the audit's (0 = every audit passed).
#
#   bash tests/audit/run.sh            (from anywhere; needs .venv with the gateway installed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="$root/.venv/bin/python"
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

export GATEWAY_DATABASE_URL="sqlite+aiosqlite:///$work/audit.db"
# An empty source and one ACTIVE integration with every permission: the audits read only
# `__typename` and `__type`, but they run as a real, valid token would.
token="$("$python" - <<'PY'
import asyncio

from gateway.access.grant import Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.admin.service import create_integration, create_source
from gateway.db import engine_for
from gateway.settings import load_settings


async def main() -> str:
    async with engine_for(load_settings().database_url) as engine, engine.begin() as conn:
        source = await create_source(conn, "GraphQL-over-HTTP audit")
        created = await create_integration(
            conn, source_id=source.id, scope=Scope.ALL, permissions=sorted(ALL_SLUGS)
        )
        return created.token


print(asyncio.run(main()))
PY
)"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# What `gateway serve` runs, without the command line around it.
"$python" -m uvicorn gateway.app:create_app --factory --host 127.0.0.1 --port "$port" \
  --log-level warning > "$work/server.log" 2>&1 &
server=$!
"$python" - "$port" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the gateway did not start within 30 s")
        time.sleep(0.1)
PY

status=0
GATEWAY_AUDIT_TOKEN="$token" node "$here/run-audit.mjs" "http://127.0.0.1:$port/graphql" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- gateway log (last 40 lines)" >&2
  tail -n 40 "$work/server.log" >&2
fi
exit "$status"
