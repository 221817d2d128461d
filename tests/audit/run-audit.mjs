// Runs every graphql-http server audit (MUST, SHOULD and MAY) against a live gateway.
//
//   GATEWAY_AUDIT_TOKEN=<access token> node run-audit.mjs [URL]
//
// URL defaults to $GATEWAY_AUDIT_URL, then http://127.0.0.1:8000/graphql. The token is sent
// as `Authorization: Bearer <token>` on every request and never printed. Prints one line per
// audit, then the summary, then a closing `audit: N passed, N failed` line. Exit status 0
// when every audit passes, 1 otherwise, 2 when misconfigured.
import { readFileSync } from 'node:fs';
import { serverAudits } from 'graphql-http';

const auditVersion = JSON.parse(
  readFileSync(new URL('./node_modules/graphql-http/package.json', import.meta.url)),
).version;

const url = process.argv[2] || process.env.GATEWAY_AUDIT_URL || 'http://127.0.0.1:8000/graphql';
const token = process.env.GATEWAY_AUDIT_TOKEN;
if (!token) {
  console.error('GATEWAY_AUDIT_TOKEN is not set: the audits must run as a real integration');
  process.exit(2);
}

/** `fetch` with the integration's token added to every request. */
function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const audits = serverAudits({ url, fetchFn: fetchWithToken });
const byLevel = new Map([['MUST', [0, 0]], ['SHOULD', [0, 0]], ['MAY', [0, 0]]]);
let failed = 0;
for (const { id, name, fn } of audits) {
  const result = await fn();
  const level = name.split(' ')[0];
  const [ok, bad] = byLevel.get(level) ?? [0, 0];
  if (result.status === 'ok') {
    byLevel.set(level, [ok + 1, bad]);
    console.log(`ok     ${id} ${name}`);
    continue;
  }
  byLevel.set(level, [ok, bad + 1]);
  failed += 1;
  let detail = result.reason;
  if (result.response) {
    const body = await result.response.text().catch(() => '<unreadable body>');
    detail += ` (HTTP ${result.response.status}: ${body.slice(0, 300)})`;
  }
  console.log(`${result.status.padEnd(6)} ${id} ${name}: ${detail}`);
}
const levels = [...byLevel].map(([level, [ok, bad]]) => `${level} ${ok}/${ok + bad}`);
console.log(`graphql-http ${auditVersion} server audit of ${url}: ${levels.join(', ')}`);
console.log(`audit: ${audits.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
