//! Authentication at the router, against a fake auth service with real Ed25519 keys: every rule
//! is tried with a token built to break it, and the subgraph must never see a bad caller.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pyairtable_kit::Caller;
use pyairtable_kit::authority::{AccessClaims, Authority, AuthorityError, TokenAudience};
use pyairtable_kit::testing::{GraphQLClient, TestServer, spawn_app};
use pyairtable_router::compose::{SubgraphSdl, compose};
use pyairtable_router::transport::{SubgraphRequest, SubgraphResponse, TransportError};
use pyairtable_router::{Authenticator, RouterOptions, Supergraph, Transport};
use serde_json::{Value, json};
use uuid::Uuid;

const ACCOUNTS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query { whoami: String secret: String }
type Mutation { logIn: String deleteEverything: String }
"#;

struct Key {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

fn new_key(kid: &str) -> Key {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("generate");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse");
    Key { kid: kid.into(), pkcs8: pkcs8.as_ref().to_vec(), public: pair.public_key().as_ref().to_vec() }
}

/// The auth service as the router sees it, with call counters.
#[derive(Default)]
struct FakeAuthority {
    published: Mutex<Vec<(String, Vec<u8>)>>,
    live: Mutex<HashSet<Uuid>>,
    api_keys: HashMap<String, Caller>,
    jwks_calls: AtomicUsize,
    api_key_calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Authority for FakeAuthority {
    async fn jwks(&self) -> Result<Value, AuthorityError> {
        self.jwks_calls.fetch_add(1, Ordering::SeqCst);
        let keys: Vec<Value> = self
            .published
            .lock()
            .expect("lock")
            .iter()
            .map(|(kid, x)| json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": B64.encode(x) }))
            .collect();
        Ok(json!({ "keys": keys }))
    }
    async fn api_key(&self, token: &str) -> Result<Option<Caller>, AuthorityError> {
        self.api_key_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.api_keys.get(token).cloned())
    }
    async fn session_live(&self, session_id: Uuid) -> Result<bool, AuthorityError> {
        Ok(self.live.lock().expect("lock").contains(&session_id))
    }
}

/// The subgraph: answers every field with "ok" and records the callers it saw.
#[derive(Default)]
struct Accounts {
    callers: Mutex<Vec<Caller>>,
}

#[async_trait::async_trait]
impl Transport for Accounts {
    async fn fetch(&self, request: SubgraphRequest<'_>) -> Result<SubgraphResponse, TransportError> {
        self.callers.lock().expect("lock").push(request.caller.clone());
        let mut data = serde_json::Map::new();
        for field in ["whoami", "secret", "logIn", "deleteEverything"] {
            if request.query.contains(field) {
                data.insert(field.into(), json!("ok"));
            }
        }
        Ok(SubgraphResponse { data: Some(Value::Object(data).into()), errors: Vec::new() })
    }
}

struct Setup {
    _server: TestServer,
    client: GraphQLClient,
    base: String,
    authority: Arc<FakeAuthority>,
    accounts: Arc<Accounts>,
    key: Key,
}

async fn setup(with_auth: bool) -> Setup {
    setup_with(with_auth, RouterOptions::default()).await
}

async fn setup_with(with_auth: bool, options: RouterOptions) -> Setup {
    let key = new_key("k1");
    let mut api_keys = HashMap::new();
    let robot =
        Caller { user_id: Some(Uuid::now_v7()), scopes: vec!["workspaces:read".into()], ..Caller::default() };
    api_keys.insert("pat_valid".to_owned(), robot);
    let authority = Arc::new(FakeAuthority { api_keys, ..FakeAuthority::default() });
    authority.published.lock().expect("lock").push((key.kid.clone(), key.public.clone()));
    let sdl = compose(&[SubgraphSdl { name: "accounts", url: "http://accounts/graphql", sdl: ACCOUNTS }])
        .expect("compose");
    let accounts = Arc::new(Accounts::default());
    let transports: HashMap<String, Arc<dyn Transport>> =
        HashMap::from([("accounts".into(), accounts.clone() as _)]);
    let authenticator = with_auth.then(|| {
        let authority: Arc<dyn Authority> = authority.clone();
        Arc::new(Authenticator::new(authority, TokenAudience::default()))
    });
    let app = pyairtable_router::app(
        Supergraph::parse(&sdl).expect("supergraph"),
        transports,
        options,
        Arc::new(|| Box::pin(async { Ok(()) })),
        authenticator,
    )
    .expect("app");
    let server = spawn_app(app).await;
    let client = GraphQLClient::new(server.graphql_url());
    let base = format!("http://{}", server.addr);
    Setup { _server: server, client, base, authority, accounts, key }
}

fn claims(session: Uuid) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: "pyairtable".into(),
        aud: "pyairtable-api".into(),
        sub: Uuid::now_v7(),
        tid: None,
        sid: session,
        exp: now + 600,
        iat: now,
        jti: Uuid::now_v7(),
        scp: vec!["*".into()],
    }
}

fn sign(key: &Key, kid: Option<&str>, claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(String::from);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&key.pkcs8)).expect("sign")
}

impl Setup {
    fn live_session(&self) -> Uuid {
        let session = Uuid::now_v7();
        self.authority.live.lock().expect("lock").insert(session);
        session
    }
    fn token(&self, claims: &AccessClaims) -> String {
        sign(&self.key, Some(&self.key.kid), claims)
    }
    async fn call(&self, authorization: &str, query: &str) -> (u16, Value) {
        self.client.clone().with_header("authorization", authorization).send(query, json!({})).await
    }
    fn subgraph_calls(&self) -> usize {
        self.accounts.callers.lock().expect("lock").len()
    }
}

#[tokio::test]
async fn a_valid_token_reaches_the_subgraph_as_its_caller() {
    let s = setup(true).await;
    let claims = AccessClaims { tid: Some(Uuid::now_v7()), ..claims(s.live_session()) };
    let (status, body) = s.call(&format!("Bearer {}", s.token(&claims)), "{ whoami }").await;
    assert_eq!((status, &body["data"]), (200, &json!({ "whoami": "ok" })), "{body}");
    let seen = s.accounts.callers.lock().expect("lock")[0].clone();
    assert_eq!(
        (seen.user_id, seen.session_id, seen.scopes),
        (Some(claims.sub), Some(claims.sid), vec!["*".into()])
    );
    assert!(seen.ip.as_deref().is_some_and(|ip| ip == "127.0.0.1"), "{:?}", seen.ip);
    // Behind a proxy on a private network, the proxy's last X-Forwarded-For hop is the client.
    let proxied = s
        .client
        .clone()
        .with_header("authorization", &format!("Bearer {}", s.token(&claims)))
        .with_header("x-forwarded-for", "10.9.9.9, 203.0.113.50")
        .with_header("user-agent", "integration-test/1.0");
    proxied.data("{ whoami }", json!({})).await;
    let seen = s.accounts.callers.lock().expect("lock")[1].clone();
    assert_eq!(seen.ip.as_deref(), Some("203.0.113.50"));
    assert_eq!(seen.user_agent.as_deref(), Some("integration-test/1.0"));
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let s = setup(true).await;
    let session = s.live_session();
    let good = claims(session);
    let token = s.token(&good);
    let foreign = new_key("k-foreign");
    let (header, payload, signature) = {
        let mut parts = token.split('.');
        (parts.next().expect("h"), parts.next().expect("p"), parts.next().expect("s"))
    };
    let tampered_claims = AccessClaims { sub: Uuid::now_v7(), ..good.clone() };
    let tampered =
        format!("{header}.{}.{signature}", B64.encode(serde_json::to_vec(&tampered_claims).expect("json")));
    let none = format!("{}.{payload}.", B64.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#));
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(&s.key.public)).expect("hs256")
    };
    let cases = [
        ("alg none", format!("Bearer {none}")),
        ("HS256 with the public key as secret", format!("Bearer {hs256}")),
        ("expired", format!("Bearer {}", s.token(&AccessClaims { exp: good.iat - 120, ..good.clone() }))),
        (
            "wrong audience",
            format!("Bearer {}", s.token(&AccessClaims { aud: "someone-else".into(), ..good.clone() })),
        ),
        ("wrong issuer", format!("Bearer {}", s.token(&AccessClaims { iss: "evil".into(), ..good.clone() }))),
        ("tampered payload", format!("Bearer {tampered}")),
        ("foreign key and kid", format!("Bearer {}", sign(&foreign, Some("k-foreign"), &good))),
        ("foreign key, known kid", format!("Bearer {}", sign(&foreign, Some("k1"), &good))),
        ("no kid", format!("Bearer {}", sign(&s.key, None, &good))),
        ("garbage", "Bearer abc".into()),
        ("empty bearer", "Bearer ".into()),
        ("basic auth", "Basic dXNlcjpwYXNz".into()),
    ];
    for (case, authorization) in cases {
        let (status, body) = s.call(&authorization, "{ whoami }").await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{case}");
        assert!(body.get("data").is_none(), "{case}: {body}");
    }
    assert_eq!(s.subgraph_calls(), 0, "no bad token reached the subgraph");
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", s.base))
        .header("authorization", "Bearer abc")
        .json(&json!({ "query": "{ whoami }" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
}

#[tokio::test]
async fn a_revoked_session_is_refused_at_once() {
    let s = setup(true).await;
    let session = s.live_session();
    let bearer = format!("Bearer {}", s.token(&claims(session)));
    assert_eq!(s.call(&bearer, "{ whoami }").await.0, 200);
    s.authority.live.lock().expect("lock").remove(&session);
    let (status, body) = s.call(&bearer, "{ whoami }").await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (401, &json!("UNAUTHENTICATED")));
}

#[tokio::test]
async fn a_new_key_is_fetched_once_and_unknown_kids_cannot_flood_the_auth_service() {
    let s = setup(true).await;
    let session = s.live_session();
    assert_eq!(s.call(&format!("Bearer {}", s.token(&claims(session))), "{ whoami }").await.0, 200);
    assert_eq!(s.authority.jwks_calls.load(Ordering::SeqCst), 1);
    // Rotation: the auth service publishes and signs with a key the router has not seen.
    let next = new_key("k2");
    s.authority.published.lock().expect("lock").push((next.kid.clone(), next.public.clone()));
    let rotated = format!("Bearer {}", sign(&next, Some("k2"), &claims(session)));
    assert_eq!(s.call(&rotated, "{ whoami }").await.0, 200, "accepted after one refetch");
    assert_eq!(s.authority.jwks_calls.load(Ordering::SeqCst), 2);
    for _ in 0..50 {
        let kid = Uuid::now_v7().to_string();
        let token = format!("Bearer {}", sign(&next, Some(&kid), &claims(session)));
        assert_eq!(s.call(&token, "{ whoami }").await.0, 401);
    }
    assert_eq!(s.authority.jwks_calls.load(Ordering::SeqCst), 2, "random kids trigger no refetch storm");
}

#[tokio::test]
async fn api_keys_resolve_through_the_auth_service_and_are_cached() {
    let s = setup(true).await;
    for _ in 0..3 {
        assert_eq!(s.call("Bearer pat_valid", "{ whoami }").await.0, 200);
    }
    assert_eq!(s.authority.api_key_calls.load(Ordering::SeqCst), 1, "cached");
    let seen = s.accounts.callers.lock().expect("lock")[0].clone();
    assert_eq!(seen.scopes, ["workspaces:read"]);
    assert_eq!(seen.session_id, None);
    for _ in 0..3 {
        assert_eq!(s.call("Bearer pat_unknown", "{ whoami }").await.0, 401);
    }
    assert_eq!(s.authority.api_key_calls.load(Ordering::SeqCst), 2, "refusals are cached too");
}

#[tokio::test]
async fn anonymous_callers_reach_only_the_public_operations() {
    let s = setup(true).await;
    assert_eq!(s.client.data("mutation { logIn }", json!({})).await, json!({ "logIn": "ok" }));
    assert_eq!(s.client.data("{ __typename }", json!({})).await, json!({ "__typename": "Query" }));
    let calls = s.subgraph_calls();
    let refused = [
        "{ secret }",
        "mutation { deleteEverything }",
        "mutation { logIn deleteEverything }",
        "mutation { logIn ... on Mutation { deleteEverything } }",
        "mutation { logIn ...F } fragment F on Mutation { deleteEverything }",
        "mutation { innocent: deleteEverything }",
    ];
    for query in refused {
        let (status, body) = s.client.send(query, json!({})).await;
        assert_eq!(status, 401, "{query}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{query}");
        assert!(body.get("data").is_none(), "{query}");
    }
    assert_eq!(s.subgraph_calls(), calls, "refused before any subgraph was called");
}

#[tokio::test]
async fn a_router_without_an_auth_service_refuses_credentials() {
    let s = setup(false).await;
    assert_eq!(s.client.data("{ secret }", json!({})).await, json!({ "secret": "ok" }));
    let session = s.live_session();
    let (status, _) = s.call(&format!("Bearer {}", s.token(&claims(session))), "{ whoami }").await;
    assert_eq!(status, 401, "cannot verify, so does not pretend to");
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", s.base)).await.expect("answers");
    assert_eq!(jwks.status(), 404);
}

#[tokio::test]
async fn the_router_serves_the_jwks() {
    let s = setup(true).await;
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", s.base))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert_eq!(jwks["keys"][0]["x"], B64.encode(&s.key.public));
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let options = RouterOptions { trusted_proxies: Vec::new(), ..RouterOptions::default() };
    let s = setup_with(true, options).await;
    let claims = claims(s.live_session());
    let spoofing = s
        .client
        .clone()
        .with_header("authorization", &format!("Bearer {}", s.token(&claims)))
        .with_header("x-forwarded-for", "203.0.113.99");
    spoofing.data("{ whoami }", json!({})).await;
    let seen = s.accounts.callers.lock().expect("lock")[0].clone();
    assert_eq!(seen.ip.as_deref(), Some("127.0.0.1"), "an untrusted peer cannot pick its address");
}
