// The graphql-ws npm client (graphql-transport-ws) against the router: subscribes with the
// bearer token in connectionParams and prints each event as one JSON line, then "done" after
// COUNT events. Usage: node subscribe.mjs WS_URL TOKEN QUERY COUNT
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, query, count] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  lazy: false,
  retryAttempts: 0,
  on: { connected: () => console.log(JSON.stringify({ connected: true })) },
});

let seen = 0;
const events = client.iterate({ query });
const deadline = setTimeout(() => { console.error('timed out'); process.exit(2); }, 30000);
try {
  for await (const event of events) {
    console.log(JSON.stringify(event));
    seen += 1;
    if (seen >= Number(count)) break;
  }
  console.log('done');
} catch (error) {
  console.error('subscription failed:', error?.message ?? JSON.stringify(error));
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
  await client.dispose();
}
