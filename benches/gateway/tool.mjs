// Helpers of run.sh, in Node (which the Node gateways need anyway).
//   node tool.mjs body QUERY_FILE             -> the JSON request body on stdout
//   node tool.mjs check RESPONSE EXPECTED     -> exit 0 when RESPONSE has no errors and the same
//                                                data as EXPECTED (object key order ignored)
//   node tool.mjs wrk WRK_OUTPUT              -> "req_per_s p50_ms p99_ms non2xx socket_errors"
import { readFileSync } from "node:fs";

const [command, ...args] = process.argv.slice(2);

function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  }
  return value;
}

// The first path at which two values differ, for the report.
function firstDifference(a, b, path = "") {
  if (JSON.stringify(a) === JSON.stringify(b)) return null;
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) {
      const d = firstDifference(a[key], b[key], `${path}.${key}`);
      if (d) return d;
    }
  }
  return `${path || "."}: got ${JSON.stringify(a)?.slice(0, 200)}, expected ${JSON.stringify(b)?.slice(0, 200)}`;
}

function ms(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60000 }[m[2]];
  return Number(m[1]) * scale;
}

if (command === "body") {
  process.stdout.write(JSON.stringify({ query: readFileSync(args[0], "utf8") }));
} else if (command === "check") {
  let response;
  try {
    response = JSON.parse(readFileSync(args[0], "utf8"));
  } catch (e) {
    console.log(`not JSON: ${readFileSync(args[0], "utf8").slice(0, 300)}`);
    process.exit(1);
  }
  const expected = JSON.parse(readFileSync(args[1], "utf8"));
  if (response.errors) {
    console.log(`errors: ${JSON.stringify(response.errors).slice(0, 500)}`);
    process.exit(1);
  }
  const diff = firstDifference(canonical(response.data), canonical(expected.data ?? expected), "data");
  if (diff) {
    console.log(`wrong data at ${diff}`);
    process.exit(1);
  }
  console.log("ok");
} else if (command === "wrk") {
  const text = readFileSync(args[0], "utf8");
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? "NaN";
  const p50 = ms(/^\s+50%\s+(\S+)/m.exec(text)?.[1] ?? "");
  const p99 = ms(/^\s+99%\s+(\S+)/m.exec(text)?.[1] ?? "");
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? "0";
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = sock ? sock.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
  console.log(`${rps} ${p50.toFixed(2)} ${p99.toFixed(2)} ${non2xx} ${socketErrors}`);
} else {
  console.error("usage: node tool.mjs body|check|wrk ...");
  process.exit(2);
}
