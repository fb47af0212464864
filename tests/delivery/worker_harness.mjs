// Runs edge/cloudflare/worker.js under node for tests/delivery/test_worker.py.
// argv[2]: the worker's path. stdin: {"secret", "verify": [{token, path, now}], "env", "fetch": [{url, method, headers}]}.
// stdout: {"verify": [verdict...], "fetch": [{status, headers, body_b64}...]}.
import { pathToFileURL } from "node:url";

const worker = await import(pathToFileURL(process.argv[2]).href);
let text = "";
for await (const chunk of process.stdin) text += chunk;
const input = JSON.parse(text);
const out = { verify: [], fetch: [] };
for (const item of input.verify ?? []) {
  out.verify.push(await worker.verifyToken(item.token, item.path, input.secret, item.now));
}
for (const item of input.fetch ?? []) {
  const request = new Request(item.url, { method: item.method ?? "GET", headers: item.headers ?? {} });
  const response = await worker.default.fetch(request, input.env, { waitUntil() {} });
  const body = Buffer.from(await response.arrayBuffer());
  out.fetch.push({
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body_b64: body.toString("base64"),
  });
}
process.stdout.write(JSON.stringify(out));
