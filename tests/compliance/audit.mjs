// The graphql-http package's GraphQL-over-HTTP server audit against a running router.
// Usage: node audit.mjs http://127.0.0.1:4000/graphql
// Prints "graphql-http audit: N/M passed (K warnings)"; exits non-zero on any MUST failure.
import { getIntrospectionQuery } from "graphql";
import { auditServer } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node audit.mjs URL");
  process.exit(2);
}
const results = await auditServer({ url, fetchFn: fetch });
let failures = 0;
for (const result of results) {
  if (result.status === "ok") continue;
  const level = { error: "FAIL", warn: "WARN", notice: "NOTE" }[result.status];
  if (result.status === "error") failures += 1;
  console.log(`${level} ${result.name}: ${result.reason}`);
}
// GraphiQL's and codegen's introspection query must fit the default depth, alias and token limits.
const introspection = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
});
const response = await fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
  body: JSON.stringify({ query: introspection, operationName: "IntrospectionQuery" }),
});
const body = await response.json();
if (response.status !== 200 || !body.data?.__schema?.queryType) {
  console.log(`FAIL the full introspection query: ${response.status} ${JSON.stringify(body)}`);
  failures += 1;
}
const passed = results.filter((r) => r.status === "ok").length;
const warnings = results.filter((r) => r.status === "warn").length;
console.log(`graphql-http audit: ${passed}/${results.length} passed (${warnings} warnings)`);
process.exit(failures === 0 ? 0 : 1);
