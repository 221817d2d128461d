#!/usr/bin/env bash
# Generated clients end to end: serve the demo on a free loopback port from a fresh SQLite file,
# generate a TypeScript client (graphql-codegen from the live endpoint's introspection), compile
# it with tsc and run its sample with node; generate a Python client (ariadne-codegen, in a venv
# of its own) and run its sample; check that each read the demo's data and saw a FORBIDDEN
# error (clients/check.py). The server is always stopped. Exit status 0 when both samples pass.
#
#   bash clients/run.sh            (from anywhere; needs .venv with the gateway installed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="$root/.venv/bin/python"
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- install: npm ci (clients/typescript), ariadne-codegen (clients/python/.venv)"
(cd "$here/typescript" && npm ci --no-audit --no-fund --loglevel=error)
if [ ! -x "$here/python/.venv/bin/python" ]; then
  python3 -m venv "$here/python/.venv"
fi
"$here/python/.venv/bin/pip" install -q --disable-pip-version-check -r "$here/python/requirements.txt"

echo "-- the demo, served from $work/demo.db"
export GATEWAY_DATABASE_URL="sqlite+aiosqlite:///$work/demo.db"
"$python" -m gateway demo --json > "$work/demo.json"
token() {
  "$python" -c 'import json, sys
tokens = {i["name"]: i["token"] for i in json.load(open(sys.argv[1]))["integrations"]}
print(tokens[sys.argv[2]])' "$work/demo.json" "$1"
}
export GATEWAY_TOKEN="$(token all)"
export GATEWAY_PARTIAL_TOKEN="$(token partial-permissions)"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$python" -m gateway serve --demo --port "$port" > "$work/server.log" 2>&1 &
server=$!
export GATEWAY_GRAPHQL_URL="http://127.0.0.1:$port/graphql"
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

# Each step's failure fails its client (errexit does not apply inside a function called from an
# `&&` list, hence the explicit `|| return 1`).
run_typescript() {
  cd "$here/typescript" || return 1
  rm -rf src/generated dist
  echo "-- graphql-codegen (typescript, typescript-operations) from $GATEWAY_GRAPHQL_URL"
  npx --no-install graphql-codegen --config codegen.ts > "$work/codegen.log" 2>&1 \
    || { cat "$work/codegen.log"; return 1; }
  ls src/generated || return 1
  echo "-- tsc (strict; nothing is emitted on a type error)"
  npx --no-install tsc -p tsconfig.json || return 1
  echo "-- node dist/sample.js"
  node dist/sample.js | tee "$work/typescript.out" || return 1
}
run_python() {
  cd "$here/python" || return 1
  rm -rf gateway_client
  echo "-- ariadne-codegen from $GATEWAY_GRAPHQL_URL"
  .venv/bin/ariadne-codegen --config ariadne-codegen.toml > "$work/ariadne.log" 2>&1 \
    || { cat "$work/ariadne.log"; return 1; }
  ls gateway_client || return 1
  echo "-- python sample.py"
  .venv/bin/python sample.py | tee "$work/python.out" || return 1
}
status=0
(run_typescript) && "$python" "$here/check.py" "$work/demo.db" "$work/typescript.out" typescript \
  || { echo "typescript client: FAILED"; status=1; }
(run_python) && "$python" "$here/check.py" "$work/demo.db" "$work/python.out" python \
  || { echo "python client: FAILED"; status=1; }

if [ "$status" -ne 0 ]; then
  echo "--- gateway log (last 40 lines)" >&2
  tail -n 40 "$work/server.log" >&2
fi
exit "$status"
