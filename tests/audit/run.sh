#!/usr/bin/env bash
# The GraphQL-over-HTTP audit end to end: install the pinned audit suite, load the demo into a
# fresh SQLite file, serve it on a free loopback port, run every audit with the demo's
# all-permissions token, stop the server. Exit status is the audit's (0 = every audit passed).
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
"$root/.venv/bin/gateway" demo --people 20 --json > "$work/demo.json"
token="$("$python" -c '
import json, sys
demo = json.load(open(sys.argv[1]))
print(next(i["token"] for i in demo["integrations"] if i["name"] == "all"))
' "$work/demo.json")"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"$root/.venv/bin/gateway" serve --host 127.0.0.1 --port "$port" > "$work/server.log" 2>&1 &
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
