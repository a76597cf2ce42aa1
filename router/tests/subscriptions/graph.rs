//! Three real subgraphs (async-graphql, as ours are built): reviews owns the subscriptions and
//! references products and users, which the router resolves from the two other subgraphs for
//! every event. Served in process or over HTTP and WebSocket with the kit's subgraph service.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject, Subscription,
};
use futures::Stream;
use pyairtable_kit::authority::{AccessClaims, Authority, AuthorityError, TokenAudience};
use pyairtable_kit::http::ReadyCheck;
use pyairtable_kit::subgraph::{Subgraph, federation_sdl, http_app};
use pyairtable_kit::testing::{TestServer, spawn_app};
use pyairtable_kit::{Caller, IdentityKey, Lifecycle, Secret};
use pyairtable_router::compose::{SubgraphSdl, compose};
use pyairtable_router::subscription::SubscriptionOptions;
use pyairtable_router::transport::HttpSubgraphs;
use pyairtable_router::{Authenticator, Gateway, InProcess, RouterOptions, Supergraph, Transport};
use tokio::sync::broadcast;
use uuid::Uuid;

/// A review as the reviews subgraph publishes it.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Review {
    pub id: ID,
    pub body: String,
    #[graphql(skip)]
    pub upc: String,
    #[graphql(skip)]
    pub author: ID,
}

#[async_graphql::ComplexObject]
impl Review {
    async fn product(&self) -> ProductRef {
        ProductRef { upc: self.upc.clone() }
    }
    async fn author(&self) -> UserRef {
        UserRef { id: self.author.clone() }
    }
}

/// `Product` as reviews knows it: its key only.
#[derive(SimpleObject)]
#[graphql(name = "Product")]
pub struct ProductRef {
    upc: String,
}

/// `User` as reviews knows it: its key only.
#[derive(SimpleObject)]
#[graphql(name = "User")]
pub struct UserRef {
    id: ID,
}

/// A message addressed to one user.
#[derive(Debug, Clone)]
pub struct Notice {
    pub to: Uuid,
    pub text: String,
}

/// What the reviews subgraph publishes on, shared with the test.
#[derive(Clone)]
pub struct Bus {
    pub reviews: broadcast::Sender<Review>,
    pub notices: broadcast::Sender<Notice>,
}

impl Bus {
    fn new() -> Self {
        Self { reviews: broadcast::channel(64).0, notices: broadcast::channel(64).0 }
    }

    /// Subscribers listening on either channel (the subgraph holds one receiver per stream).
    pub fn listeners(&self) -> usize {
        self.reviews.receiver_count() + self.notices.receiver_count()
    }
}

fn receive<T: Clone + Send + 'static>(rx: broadcast::Receiver<T>) -> impl Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(item) => return Some((item, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

pub struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    async fn reviews(&self) -> Vec<Review> {
        Vec::new()
    }
    #[graphql(entity)]
    async fn find_product(&self, upc: String) -> ProductRef {
        ProductRef { upc }
    }
    #[graphql(entity)]
    async fn find_user(&self, id: ID) -> UserRef {
        UserRef { id }
    }
}

pub struct ReviewsMutation;

#[Object(name = "Mutation")]
impl ReviewsMutation {
    async fn add_review(&self, ctx: &Context<'_>, upc: String, body: String, author: ID) -> Review {
        let review = Review { id: ID(Uuid::now_v7().to_string()), body, upc, author };
        let _ = ctx.data_unchecked::<Bus>().reviews.send(review.clone());
        review
    }
}

pub struct ReviewsSubscription;

#[Subscription(name = "Subscription")]
impl ReviewsSubscription {
    /// Every review added (of one product, when `upc` is given).
    async fn review_added(&self, ctx: &Context<'_>, upc: Option<String>) -> impl Stream<Item = Review> {
        use futures::StreamExt;
        let rx = ctx.data_unchecked::<Bus>().reviews.subscribe();
        receive(rx).filter(move |r| std::future::ready(upc.as_ref().is_none_or(|u| *u == r.upc)))
    }

    /// The notices addressed to the caller, as the router's signed identity names them.
    async fn my_notices(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = String>> {
        use futures::StreamExt;
        let me = ctx.data::<Caller>()?.user_id.ok_or("sign in")?;
        let rx = ctx.data_unchecked::<Bus>().notices.subscribe();
        Ok(receive(rx).filter(move |n| std::future::ready(n.to == me)).map(|n| n.text))
    }

    /// `from`, `from - 1`, ... 1, then the subgraph completes the subscription.
    async fn countdown(&self, from: u32) -> impl Stream<Item = u32> {
        futures::stream::iter((1..=from).rev())
    }

    /// A stream that fails at once, as a subgraph refusing a subscription does.
    async fn refused(&self) -> async_graphql::Result<impl Stream<Item = u32>> {
        Err::<futures::stream::Empty<u32>, _>(async_graphql::Error::new("not for you"))
    }
}

#[derive(SimpleObject)]
pub struct Product {
    upc: String,
    name: String,
    price: i32,
}

pub struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(&self) -> Vec<Product> {
        vec![product("p1".into())]
    }
    #[graphql(entity)]
    async fn find_product(&self, upc: String) -> Product {
        product(upc)
    }
}

fn product(upc: String) -> Product {
    Product { name: format!("Product {upc}"), price: 10, upc }
}

#[derive(SimpleObject)]
pub struct User {
    id: ID,
    username: String,
}

pub struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        let id = ctx.data::<Caller>().ok()?.user_id?;
        Some(User { id: ID(id.to_string()), username: format!("user-{id}") })
    }
    #[graphql(entity)]
    async fn find_user(&self, id: ID) -> User {
        User { username: format!("user-{}", id.0), id }
    }
}

/// The three subgraphs, by name, with their SDL.
pub fn subgraphs(bus: &Bus) -> Vec<Subgraph> {
    let reviews = Schema::build(ReviewsQuery, ReviewsMutation, ReviewsSubscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .data(bus.clone())
        .finish();
    let products =
        Schema::build(ProductsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    let accounts =
        Schema::build(AccountsQuery, EmptyMutation, EmptySubscription).enable_federation().finish();
    vec![
        Subgraph::new("reviews", federation_sdl(&reviews), Arc::new(reviews)),
        Subgraph::new("products", federation_sdl(&products), Arc::new(products)),
        Subgraph::new("accounts", federation_sdl(&accounts), Arc::new(accounts)),
    ]
}

/// API keys the fake auth service knows: `pat_<name>` for each of these users.
pub struct Users {
    pub alice: Uuid,
    pub bob: Uuid,
}

/// The auth service as the router sees it: API keys, one Ed25519 signing key for access tokens,
/// and the sessions still live.
struct Keys {
    api_keys: HashMap<String, Caller>,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    live: Mutex<HashSet<Uuid>>,
}

#[async_trait::async_trait]
impl Authority for Keys {
    async fn jwks(&self) -> Result<serde_json::Value, AuthorityError> {
        use base64::Engine;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.public);
        Ok(
            serde_json::json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1", "x": x }] }),
        )
    }
    async fn api_key(&self, token: &str) -> Result<Option<Caller>, AuthorityError> {
        Ok(self.api_keys.get(token).cloned())
    }
    async fn session_live(&self, session: Uuid) -> Result<bool, AuthorityError> {
        Ok(self.live.lock().expect("lock").contains(&session))
    }
}

fn keys(users: &Users) -> Arc<Keys> {
    use aws_lc_rs::signature::KeyPair;
    let api_keys = [("pat_alice", users.alice), ("pat_bob", users.bob)]
        .into_iter()
        .map(|(key, id)| (key.to_owned(), Caller::user(id)))
        .collect();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("generate");
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse");
    let public = pair.public_key().as_ref().to_vec();
    Arc::new(Keys { api_keys, pkcs8: pkcs8.as_ref().to_vec(), public, live: Mutex::default() })
}

/// How the router reaches the subgraphs.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    InProcess,
    Http,
}

/// A router over the three subgraphs, the bus they publish on, and the users it knows.
pub struct Graph {
    pub addr: SocketAddr,
    keys: Arc<Keys>,
    pub bus: Bus,
    pub users: Users,
    pub lifecycle: Lifecycle,
    _subgraphs: Vec<TestServer>,
}

impl Graph {
    pub async fn start(mode: Mode) -> Self {
        Self::with(mode, SubscriptionOptions::default()).await
    }

    pub async fn with(mode: Mode, subscriptions: SubscriptionOptions) -> Self {
        let bus = Bus::new();
        let users = Users { alice: Uuid::now_v7(), bob: Uuid::now_v7() };
        let subgraphs = subgraphs(&bus);
        let key = IdentityKey::new(&Secret::new("subscriptions test secret, 32 bytes or more"));
        let mut served = Vec::new();
        let mut urls = Vec::new();
        for subgraph in &subgraphs {
            let ready: ReadyCheck = Arc::new(|| Box::pin(async { Ok(()) }));
            let server = spawn_app(http_app(subgraph, key.clone(), ready)).await;
            urls.push((subgraph.name.to_owned(), server.graphql_url()));
            served.push(server);
        }
        let inputs: Vec<SubgraphSdl<'_>> = subgraphs
            .iter()
            .zip(&urls)
            .map(|(s, (_, url))| SubgraphSdl { name: s.name, url, sdl: &s.sdl })
            .collect();
        let supergraph = Supergraph::parse(&compose(&inputs).expect("compose")).expect("supergraph");
        let lifecycle = Lifecycle::new(Duration::from_secs(5));
        let options = RouterOptions {
            subscriptions: SubscriptionOptions { lifecycle: Some(lifecycle.clone()), ..subscriptions },
            ..RouterOptions::default()
        };
        let gateway = match mode {
            Mode::InProcess => {
                let transports: HashMap<String, Arc<dyn Transport>> = subgraphs
                    .iter()
                    .map(|s| {
                        (s.name.to_owned(), Arc::new(InProcess(s.service.clone())) as Arc<dyn Transport>)
                    })
                    .collect();
                Gateway::new(supergraph, transports, options.subgraphs.clone())
            }
            Mode::Http => {
                let connector = HttpSubgraphs { key: Some(key), urls, http2: Vec::new() };
                Gateway::new(supergraph, connector, options.subgraphs.clone())
            }
        };
        let gateway = Arc::new(gateway.expect("gateway"));
        let ready: ReadyCheck = Arc::new(|| Box::pin(async { Ok(()) }));
        let keys = keys(&users);
        let authenticator = Arc::new(Authenticator::new(keys.clone(), TokenAudience::default()));
        let app = pyairtable_router::app_with(gateway, options, ready, Some(authenticator));
        let addr = serve(app, &lifecycle).await;
        Self { addr, keys, bus, users, lifecycle, _subgraphs: served }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// Waits (up to 10 s) until the subgraph has `n` streams open.
    pub async fn listening(&self, n: usize) {
        for _ in 0..1000 {
            if self.bus.listeners() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the subgraph has {} streams open, not {n}", self.bus.listeners());
    }

    /// An access token of `user` for a new live session, and the session.
    pub fn token(&self, user: Uuid) -> (String, Uuid) {
        let session = Uuid::now_v7();
        self.keys.live.lock().expect("lock").insert(session);
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "pyairtable".into(),
            aud: "pyairtable-api".into(),
            sub: user,
            tid: None,
            sid: session,
            exp: now + 600,
            iat: now,
            jti: Uuid::now_v7(),
            scp: vec!["*".into()],
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let key = jsonwebtoken::EncodingKey::from_ed_der(&self.keys.pkcs8);
        (jsonwebtoken::encode(&header, &claims, &key).expect("sign"), session)
    }

    /// Ends a session, as logging out does.
    pub fn revoke(&self, session: Uuid) {
        self.keys.live.lock().expect("lock").remove(&session);
    }

    pub fn review(&self, upc: &str, body: &str) {
        let review = Review {
            id: ID(Uuid::now_v7().to_string()),
            body: body.into(),
            upc: upc.into(),
            author: ID(self.users.alice.to_string()),
        };
        self.bus.reviews.send(review).expect("someone listens");
    }
}

/// Serves `app` on a random port under `lifecycle` (a test stops it to see the shutdown).
async fn serve(app: axum::Router, lifecycle: &Lifecycle) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = lifecycle.clone();
    tokio::spawn(async move { pyairtable_kit::http::serve(listener, app, &serving).await });
    addr
}

impl Drop for Graph {
    fn drop(&mut self) {
        self.lifecycle.stop(pyairtable_kit::StopReason::GoingAway);
    }
}
