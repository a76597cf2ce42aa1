// Apollo Client's persisted-queries link against a running router: the hash alone over GET,
// the query after PersistedQueryNotFound, then the hash alone again.
// Usage: node apq.mjs http://127.0.0.1:4000/graphql    (prints "apollo persisted queries: ok")
import { createHash } from "node:crypto";
import pkg from "@apollo/client/core/core.cjs";
import persisted from "@apollo/client/link/persisted-queries/persisted-queries.cjs";

const { ApolloClient, HttpLink, InMemoryCache, gql } = pkg;
const { createPersistedQueryLink } = persisted;

const url = process.argv[2];
const sent = [];
const recordingFetch = (input, init) => {
  sent.push({ method: init?.method ?? "GET", url: String(input), body: init?.body });
  return fetch(input, init);
};
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const link = createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
  new HttpLink({ uri: url, fetch: recordingFetch }),
);
const query = gql`query Me { me { id name } }`;
const fail = (message) => {
  console.error(message, JSON.stringify(sent, null, 2));
  process.exit(1);
};

for (const round of [1, 2]) {
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const { data } = await client.query({ query, fetchPolicy: "no-cache" });
  if (data?.me?.name !== "Ada") fail(`round ${round}: unexpected data ${JSON.stringify(data)}`);
}
// Round 1: GET with the hash (not found), POST with the query. Round 2: GET with the hash.
const methods = sent.map((s) => s.method).join(",");
if (methods !== "GET,POST,GET") fail(`unexpected exchange ${methods}`);
if (sent[0].url.includes("query=") || sent[2].url.includes("query=")) fail("the hashed GETs carried the query");
if (!String(sent[1].body).includes('"query"')) fail("the retry did not carry the query");
console.log("apollo persisted queries: ok");
