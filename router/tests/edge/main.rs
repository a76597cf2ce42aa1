//! The router's front door, end to end over HTTP: rate limits (in process and shared through
//! Redis by two routers), query limits and cost, persisted queries and trusted documents, CSRF,
//! CORS, request ids, header propagation, batching, metrics, and the GraphQL-over-HTTP audit.
//! The subgraph is a canned one served over HTTP, so the real transport runs too.

mod apq;
mod compliance;
mod http;
mod limits;
mod ratelimit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use pyairtable_kit::authority::{Authority, AuthorityError, TokenAudience};
use pyairtable_kit::config::{EdgeConfig, Environment};
use pyairtable_kit::testing::{TEST_INTERNAL_SECRET, TestServer, spawn_app};
use pyairtable_kit::{Caller, IdentityKey, Secret};
use pyairtable_router::compose::{SubgraphSdl, compose};
use pyairtable_router::{Authenticator, Http, RouterOptions, SharedRedis, Supergraph, Transport};
use serde_json::{Value, json};
use uuid::Uuid;

const ACCOUNTS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query {
  me: User
  user(id: ID!): User
  users(first: Int, last: Int): [User!]!
  search(limit: Int): [User!]! @listSize(slicingArguments: ["limit"])
  page(first: Int, after: String): UserConnection!
  recent: [User!]! @listSize(assumedSize: 3)
  expensive: Int @cost(weight: 50)
  tags: [String!]!
}
type User @key(fields: "id") {
  id: ID!
  name: String
  friends(first: Int): [User!]!
}
type UserConnection { edges: [UserEdge!]! nodes: [User!]! }
type UserEdge { node: User! cursor: String! }
input LogInInput { email: String! password: String! }
type Mutation {
  logIn(input: LogInInput!): String
  requestPasswordReset(email: String!): Boolean
  rename(name: String!): User
}
"#;

/// The canned subgraph: records the headers of every request and answers a superset of every
/// root field (the router projects what the client asked for).
#[derive(Default)]
pub struct Subgraph {
    pub headers: Mutex<Vec<HeaderMap>>,
}

fn canned() -> Value {
    let user = json!({ "id": "u1", "name": "Ada", "friends": [] , "__typename": "User" });
    json!({
        "me": user, "user": user, "users": [user], "search": [user], "recent": [user], "rename": user,
        "page": { "edges": [{ "node": user, "cursor": "c1" }], "nodes": [user] },
        "expensive": 7, "tags": ["a", "b"], "logIn": "ok", "requestPasswordReset": true,
    })
}

async fn serve_subgraph(subgraph: Arc<Subgraph>) -> TestServer {
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |headers: HeaderMap| {
            let subgraph = subgraph.clone();
            async move {
                subgraph.headers.lock().expect("lock").push(headers);
                axum::Json(json!({ "data": canned() }))
            }
        }),
    );
    spawn_app(app).await
}

/// The auth service: API keys `pat_<user>` for three users, two of them in one tenant.
struct Keys(HashMap<String, Caller>);

#[async_trait::async_trait]
impl Authority for Keys {
    async fn jwks(&self) -> Result<Value, AuthorityError> {
        Ok(json!({ "keys": [] }))
    }
    async fn api_key(&self, token: &str) -> Result<Option<Caller>, AuthorityError> {
        Ok(self.0.get(token).cloned())
    }
    async fn session_live(&self, _: Uuid) -> Result<bool, AuthorityError> {
        Ok(true)
    }
}

fn keys() -> Keys {
    let (acme, globex) = (Some(Uuid::now_v7()), Some(Uuid::now_v7()));
    let user = |tenant_id| Caller { user_id: Some(Uuid::now_v7()), tenant_id, ..Caller::default() };
    Keys(HashMap::from([
        ("pat_alice".to_owned(), user(acme)),
        ("pat_bob".to_owned(), user(acme)),
        ("pat_carol".to_owned(), user(globex)),
        ("pat_dave".to_owned(), user(None)),
    ]))
}

/// A router over the canned subgraph.
pub struct Edge {
    pub base: String,
    pub subgraph: Arc<Subgraph>,
    _servers: (TestServer, TestServer),
}

/// Development defaults, with every rate limit off unless a test turns one on.
pub fn options() -> RouterOptions {
    let mut edge = EdgeConfig::defaults(Environment::Development);
    edge.rate_limits = pyairtable_kit::config::RateLimits {
        caller: None,
        tenant: None,
        ip: None,
        anonymous_ip: None,
        anonymous_account: None,
        cost: None,
    };
    RouterOptions { edge, ..RouterOptions::default() }
}

/// A Redis connection of its own (each router in a test gets one).
pub async fn redis() -> SharedRedis {
    let url = Secret::new(pyairtable_kit::testing::redis_url());
    SharedRedis(pyairtable_kit::kit::connect_redis(&url).await.expect("Redis answers"))
}

/// A key prefix no other test run shares.
pub fn unique_prefix() -> String {
    format!("test:{}:", Uuid::now_v7())
}

pub async fn start(options: RouterOptions) -> Edge {
    let subgraph = Arc::new(Subgraph::default());
    let sub_server = serve_subgraph(subgraph.clone()).await;
    let url = sub_server.graphql_url();
    let sdl = compose(&[SubgraphSdl { name: "accounts", url: &url, sdl: ACCOUNTS }]).expect("compose");
    let key = IdentityKey::new(&Secret::new(TEST_INTERNAL_SECRET));
    let http = Http::new(&url, Some(key), false).expect("transport");
    let transports: HashMap<String, Arc<dyn Transport>> =
        HashMap::from([("accounts".into(), Arc::new(http) as _)]);
    let authority: Arc<dyn Authority> = Arc::new(keys());
    let mut authenticator = Authenticator::new(authority, TokenAudience::default());
    authenticator.public.mutations =
        ["logIn", "requestPasswordReset"].map(String::from).into_iter().collect();
    let queries = ["me", "user", "users", "search", "page", "recent", "expensive", "tags"];
    authenticator.public.queries = queries.map(String::from).into_iter().collect();
    let supergraph = Supergraph::parse(&sdl).expect("supergraph");
    let ready = Arc::new(|| Box::pin(async { Ok(()) }) as _);
    let app = pyairtable_router::app(supergraph, transports, options, ready, Some(Arc::new(authenticator)))
        .expect("app");
    let server = spawn_app(app).await;
    Edge { base: format!("http://{}", server.addr), subgraph, _servers: (server, sub_server) }
}

/// A response as a test reads it.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl Edge {
    pub fn url(&self) -> String {
        format!("{}/graphql", self.base)
    }

    /// POSTs a JSON body with extra headers.
    pub async fn post(&self, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut request = reqwest::Client::new().post(self.url()).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.expect("the router answers")).await
    }

    /// POSTs `{ query }`.
    pub async fn query(&self, query: &str, headers: &[(&str, &str)]) -> Reply {
        self.post(json!({ "query": query }), headers).await
    }

    /// GETs `/graphql` with query-string parameters.
    pub async fn get(&self, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let mut url = reqwest::Url::parse(&self.url()).expect("a URL");
        url.query_pairs_mut().extend_pairs(params);
        let mut request = reqwest::Client::new().get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.expect("the router answers")).await
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, headers, body }
}
