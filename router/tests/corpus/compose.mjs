// Composes one corpus case with Apollo's composition and prints the supergraph:
//   npm install --no-save @apollo/composition@2 graphql@16   (anywhere outside the repository)
//   NODE_PATH=<that folder>/node_modules node compose.mjs <case folder> > <case folder>/supergraph.graphql
// The subgraph URLs are placeholders: the corpus test points each subgraph at its canned server.
import { createRequire } from "node:module";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(join(process.env.NODE_PATH ?? ".", "x.js"));
const { composeServices } = require("@apollo/composition");
const { parse } = require("graphql");

const dir = process.argv[2];
const services = readdirSync(dir)
  .filter((f) => f.endsWith(".graphql") && f !== "supergraph.graphql")
  .sort()
  .map((f) => {
    const name = f.replace(/\.graphql$/, "");
    const typeDefs = parse(readFileSync(join(dir, f), "utf8"));
    return { name, url: `http://${name}.corpus.invalid/graphql`, typeDefs };
  });
const result = composeServices(services);
if (result.errors) {
  console.error(result.errors.map((e) => e.message).join("\n"));
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
