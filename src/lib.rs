//! Assembly of PyAirtable processes: the whole supergraph in one process, one subgraph as its own
//! service, or the router alone over HTTP subgraphs. `main.rs` only parses the command line.

pub mod schema_files;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pyairtable_kit::authority::{HttpAuthority, TokenAudience};
use pyairtable_kit::http::{ReadyCheck, serve};
use pyairtable_kit::{Caller, Config, IdentityKey, Kit, Lifecycle, StopReason, Subgraph};
use pyairtable_router::compose::{SubgraphSdl, compose};
use pyairtable_router::subscription::SubscriptionOptions;
use pyairtable_router::transport::SubgraphRequest;
use pyairtable_router::transport::{HttpSubgraphs, TransportError};
use pyairtable_router::upload::{HttpTarget, UploadTarget};
use pyairtable_router::{
    Authenticator, Gateway, Http, InProcess, RouterOptions, SharedRedis, SubgraphPolicy, Supergraph,
    Transport, TrustedDocuments,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A subgraph crate, as the process assembly sees it.
pub struct SubgraphEntry {
    pub name: &'static str,
    /// Builds the subgraph on a kit's connections.
    pub build: fn(&Kit) -> Subgraph,
    /// Its federation SDL, without connections.
    pub sdl: fn() -> String,
}

/// The subgraphs of the platform.
/// Permissions comes first: it hands the kit its engine, which the subgraphs after it use in
/// one process.
pub const SUBGRAPHS: &[SubgraphEntry] = &[
    SubgraphEntry {
        name: pyairtable_permissions::NAME,
        build: pyairtable_permissions::subgraph,
        sdl: pyairtable_permissions::sdl,
    },
    SubgraphEntry {
        name: pyairtable_auth::NAME,
        build: pyairtable_auth::subgraph,
        sdl: pyairtable_auth::sdl,
    },
    SubgraphEntry {
        name: pyairtable_users::NAME,
        build: pyairtable_users::subgraph,
        sdl: pyairtable_users::sdl,
    },
    SubgraphEntry {
        name: pyairtable_tenants::NAME,
        build: pyairtable_tenants::subgraph,
        sdl: pyairtable_tenants::sdl,
    },
    SubgraphEntry {
        name: pyairtable_workspaces::NAME,
        build: pyairtable_workspaces::subgraph,
        sdl: pyairtable_workspaces::sdl,
    },
    SubgraphEntry {
        name: pyairtable_files::NAME,
        build: pyairtable_files::subgraph,
        sdl: pyairtable_files::sdl,
    },
    SubgraphEntry {
        name: pyairtable_webhooks::NAME,
        build: pyairtable_webhooks::subgraph,
        sdl: pyairtable_webhooks::sdl,
    },
    SubgraphEntry {
        name: pyairtable_notifications::NAME,
        build: pyairtable_notifications::subgraph,
        sdl: pyairtable_notifications::sdl,
    },
];

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    app: axum::Router,
    kit: Option<Arc<Kit>>,
    lifecycle: Lifecycle,
}

/// A server running in the background (tests, embedding).
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, drains in-flight requests, releases the kit.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("server task")?
    }
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The stop signal and background tasks of this server.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Serves until `stop` completes; then stops accepting, drains in-flight requests and
    /// background tasks (within the grace period), releases the kit (stopping a private
    /// PostgreSQL cluster this process runs) and sends the last spans.
    pub async fn run_until(
        self,
        stop: impl Future<Output = StopReason> + Send + 'static,
    ) -> anyhow::Result<()> {
        let lifecycle = self.lifecycle.clone();
        let watcher = tokio::spawn(async move { lifecycle.stop(stop.await) });
        let served = serve(self.listener, self.app, &self.lifecycle).await;
        watcher.abort();
        self.lifecycle.stop(StopReason::GoingAway);
        if let Some(kit) = self.kit {
            kit.shutdown().await;
        }
        pyairtable_kit::traces::flush().await;
        served
    }

    /// Runs in the background until [`RunningServer::stop`].
    pub fn spawn(self) -> RunningServer {
        let addr = self.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run_until(async {
            let _ = stopped.await;
            StopReason::GoingAway
        }));
        RunningServer { addr, stop, task }
    }
}

async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("PYAIRTABLE_LISTEN: cannot listen on {}", config.listen))
}

/// The router's settings; reads the trusted documents when they are configured.
fn router_options(
    config: &Config,
    redis: Option<redis::aio::ConnectionManager>,
    lifecycle: &Lifecycle,
) -> anyhow::Result<RouterOptions> {
    let federation = &config.federation;
    let trusted_documents = match &config.edge.trusted_documents {
        Some(path) => {
            let documents = TrustedDocuments::load(path)
                .map_err(|e| anyhow::anyhow!("PYAIRTABLE_TRUSTED_DOCUMENTS: {e}"))?;
            tracing::info!(documents = documents.len(), "only trusted documents run");
            Some(Arc::new(documents))
        }
        None => None,
    };
    Ok(RouterOptions {
        subgraphs: SubgraphPolicy {
            timeout: Duration::from_millis(config.subgraph_timeout_ms),
            timeouts: federation.subgraph_timeouts.iter().cloned().collect(),
            retries: federation.retries,
            retry_backoff: federation.retry_backoff,
            breaker_failures: federation.breaker_failures,
            breaker_cooldown: federation.breaker_cooldown,
            dedupe: federation.dedupe,
        },
        override_labels: federation.override_labels.iter().cloned().collect(),
        trusted_proxies: config.trusted_proxies.clone(),
        edge: config.edge.clone(),
        redis: redis.map(SharedRedis),
        trusted_documents,
        subscriptions: SubscriptionOptions {
            lifecycle: Some(lifecycle.clone()),
            ..SubscriptionOptions::default()
        },
    })
}

/// The whole supergraph in one process: every subgraph in process behind the router.
pub async fn build_serve(mut config: Config) -> anyhow::Result<Server> {
    let listener = bind(&config).await?;
    if config.files.url.is_none() {
        let base =
            if config.public_url_set { config.public_url.clone() } else { base_url(listener.local_addr()?) };
        config.files.url = Some(base);
    }
    let kit = Arc::new(Kit::start(config).await?);
    let subgraphs: Vec<Subgraph> = SUBGRAPHS.iter().map(|entry| (entry.build)(&kit)).collect();
    let sdl = compose_local(&subgraphs)?;
    let supergraph = Supergraph::parse(&sdl)?;
    let transports: HashMap<String, Arc<dyn Transport>> = subgraphs
        .iter()
        .map(|s| (s.name.to_owned(), Arc::new(InProcess(s.service.clone())) as Arc<dyn Transport>))
        .collect();
    let authenticator = subgraphs
        .iter()
        .find_map(|s| s.authority.clone())
        .map(|authority| Arc::new(Authenticator::new(authority, TokenAudience::default())));
    let options = router_options(&kit.config, kit.redis.clone(), &kit.lifecycle)?;
    let gateway = Arc::new(Gateway::new(supergraph, transports, options.subgraphs.clone())?);
    let ready = kit.ready_check();
    let files = subgraphs.iter().find(|s| s.name == pyairtable_files::NAME);
    let mut app = match files {
        // Multipart requests go to the subgraph that takes files.
        Some(files) => {
            let target = UploadTarget::InProcess(files.service.clone());
            pyairtable_router::app_with_uploads(gateway, options, ready, authenticator, target)
        }
        None => pyairtable_router::app_with(gateway, options, ready, authenticator),
    };
    // Signed-URL endpoints (the files service's uploads and downloads) are the router's to serve
    // here.
    for routes in subgraphs.iter().filter_map(|s| s.public_routes.clone()) {
        app = app.merge(pyairtable_kit::http::instrument(routes, "router"));
    }
    tracing::info!(addr = %listener.local_addr()?, "supergraph serving in one process");
    Ok(Server { listener, app, lifecycle: kit.lifecycle.clone(), kit: Some(kit) })
}

/// Composes in-process subgraphs; URLs name where each would run as its own service.
fn compose_local(subgraphs: &[Subgraph]) -> anyhow::Result<String> {
    let urls: Vec<String> = subgraphs.iter().map(|s| default_url(s.name)).collect();
    let sdls: Vec<SubgraphSdl<'_>> =
        subgraphs.iter().zip(&urls).map(|(s, url)| SubgraphSdl { name: s.name, url, sdl: &s.sdl }).collect();
    Ok(compose(&sdls)?)
}

/// `http://ADDR`, with an unspecified address (`0.0.0.0`, `::`) as the loopback one.
fn base_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Where a subgraph runs in the production topology (docker-compose and Kubernetes service names).
pub fn default_url(name: &str) -> String {
    format!("http://{name}:4000/graphql")
}

/// One subgraph as its own HTTP service.
pub async fn build_subgraph(name: &str, mut config: Config) -> anyhow::Result<Server> {
    let Some(entry) = SUBGRAPHS.iter().find(|entry| entry.name == name) else {
        let known: Vec<&str> = SUBGRAPHS.iter().map(|entry| entry.name).collect();
        bail!("unknown subgraph {name:?}; known: {}", known.join(", "));
    };
    let key = IdentityKey::new(config.require_internal_secret()?);
    let listener = bind(&config).await?;
    if config.files.url.is_none() {
        config.files.url = Some(base_url(listener.local_addr()?));
    }
    let kit = Arc::new(Kit::start(config).await?);
    let subgraph = (entry.build)(&kit);
    let app = pyairtable_kit::subgraph::http_app(&subgraph, key, kit.ready_check());
    tracing::info!(subgraph = name, addr = %listener.local_addr()?, "subgraph serving");
    Ok(Server { listener, app, lifecycle: kit.lifecycle.clone(), kit: Some(kit) })
}

/// The router alone, over HTTP subgraphs: composed from their SDL (`PYAIRTABLE_SUBGRAPHS` /
/// `--subgraph`), or loaded from a supergraph file (`PYAIRTABLE_SUPERGRAPH` / `--supergraph`),
/// which is then reloaded whenever it changes.
pub async fn build_router(config: Config) -> anyhow::Result<Server> {
    let sdl = match &config.supergraph {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("PYAIRTABLE_SUPERGRAPH: cannot read {}", path.display()))?,
        None if config.subgraphs.is_empty() => bail!(
            "the router needs subgraphs: --subgraph name=url (or PYAIRTABLE_SUBGRAPHS) or --supergraph FILE"
        ),
        None => {
            let key = IdentityKey::new(config.require_internal_secret()?);
            compose_remote(&config.subgraphs, &key, Duration::from_millis(config.subgraph_timeout_ms)).await?
        }
    };
    let supergraph = Supergraph::parse(&sdl)?;
    let has_auth = supergraph.subgraphs.iter().any(|s| s.name == pyairtable_auth::NAME);
    // Our subgraphs trust only the signed identity; a supergraph of other services (no auth
    // subgraph) can run without the secret, and its subgraphs then get no identity header.
    let key = match (&config.internal_secret, has_auth) {
        (Some(secret), _) => Some(IdentityKey::new(secret)),
        (None, true) => Some(IdentityKey::new(config.require_internal_secret()?)),
        (None, false) => None,
    };
    let authenticator = auth_url(&config, &supergraph).zip(key.clone()).map(|(url, key)| {
        let timeout = Duration::from_millis(config.subgraph_timeout_ms);
        let authority = Arc::new(HttpAuthority::new(&url, key, timeout));
        Arc::new(Authenticator::new(authority, TokenAudience::default()))
    });
    if authenticator.is_none() {
        tracing::warn!("the supergraph has no auth subgraph: every caller is anonymous");
    }
    let uploads = upload_target(&config, &supergraph, key.as_ref())?;
    let connector =
        HttpSubgraphs { key, urls: config.subgraphs.clone(), http2: config.federation.http2.clone() };
    let redis = match &config.redis_url {
        Some(url) => Some(pyairtable_kit::kit::connect_redis(url).await?),
        None => None,
    };
    let ready = redis_ready(redis.clone());
    let lifecycle = Lifecycle::new(config.shutdown_grace);
    let options = router_options(&config, redis, &lifecycle)?;
    let gateway = Arc::new(Gateway::new(supergraph, connector, options.subgraphs.clone())?);
    if let (Some(path), Some(every)) = (&config.supergraph, config.federation.supergraph_poll) {
        gateway.watch(path.clone(), every);
    }
    let listener = bind(&config).await?;
    let ready = unless_stopping(&lifecycle, ready);
    let app = match uploads {
        Some(target) => pyairtable_router::app_with_uploads(gateway, options, ready, authenticator, target),
        None => pyairtable_router::app_with(gateway, options, ready, authenticator),
    };
    tracing::info!(addr = %listener.local_addr()?, "router serving");
    Ok(Server { listener, app, kit: None, lifecycle })
}

/// `ready`, until the process is told to stop; then "shutting down".
fn unless_stopping(lifecycle: &Lifecycle, ready: ReadyCheck) -> ReadyCheck {
    let lifecycle = lifecycle.clone();
    Arc::new(move || {
        if lifecycle.is_stopping() {
            return Box::pin(async { Err("shutting down".to_owned()) });
        }
        ready()
    })
}

/// The router alone is ready when its Redis (if any) answers.
fn redis_ready(redis: Option<redis::aio::ConnectionManager>) -> ReadyCheck {
    Arc::new(move || {
        let redis = redis.clone();
        Box::pin(async move {
            if let Some(mut redis) = redis {
                redis::cmd("PING")
                    .query_async::<String>(&mut redis)
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
            }
            Ok(())
        })
    })
}

/// The files service, when the supergraph has one (and the router signs identities): multipart
/// requests are streamed to it.
fn upload_target(
    config: &Config,
    supergraph: &Supergraph,
    key: Option<&IdentityKey>,
) -> anyhow::Result<Option<UploadTarget>> {
    let Some(key) = key else { return Ok(None) };
    let Some(info) = supergraph.subgraphs.iter().find(|s| s.name == pyairtable_files::NAME) else {
        return Ok(None);
    };
    let configured = config.subgraphs.iter().find(|(n, _)| n == &info.name).map(|(_, u)| u.clone());
    let Some(url) = configured.or_else(|| info.url.clone()) else { return Ok(None) };
    let timeout = Duration::from_millis(config.subgraph_timeout_ms);
    let target =
        HttpTarget::new(&url, key.clone(), timeout).map_err(|e| anyhow::anyhow!("subgraph files: {e}"))?;
    Ok(Some(UploadTarget::Http(Box::new(target))))
}

/// Where the auth subgraph runs, when the supergraph has one (`--subgraph auth=URL` wins over the
/// supergraph file's URL).
fn auth_url(config: &Config, supergraph: &Supergraph) -> Option<String> {
    let info = supergraph.subgraphs.iter().find(|s| s.name == pyairtable_auth::NAME)?;
    let configured =
        config.subgraphs.iter().find(|(n, _)| n == pyairtable_auth::NAME).map(|(_, u)| u.clone());
    configured.or_else(|| info.url.clone())
}

/// Fetches each subgraph's SDL (`_service { sdl }`), waiting up to a minute for late starters,
/// and composes them.
async fn compose_remote(
    subgraphs: &[(String, String)],
    key: &IdentityKey,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut sdls = Vec::with_capacity(subgraphs.len());
    for (name, url) in subgraphs {
        let http =
            Http::new(url, Some(key.clone()), false).map_err(|e| anyhow::anyhow!("subgraph {name}: {e}"))?;
        sdls.push(fetch_sdl(name, &http, timeout).await?);
    }
    let inputs: Vec<SubgraphSdl<'_>> =
        subgraphs.iter().zip(&sdls).map(|((name, url), sdl)| SubgraphSdl { name, url, sdl }).collect();
    Ok(compose(&inputs)?)
}

async fn fetch_sdl(name: &str, http: &Http, timeout: Duration) -> anyhow::Result<String> {
    let caller = Caller::anonymous();
    let no_variables = serde_json::Map::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let request = SubgraphRequest {
            query: "{ _service { sdl } }",
            variables: &no_variables,
            caller: &caller,
            request_id: "router-startup",
            written: &[],
            body: None,
        };
        let fetched = tokio::time::timeout(timeout, http.fetch(request)).await;
        let error = match fetched.unwrap_or(Err(TransportError::Timeout(timeout))) {
            Ok(response) => {
                match response
                    .data
                    .as_ref()
                    .and_then(|d| d.get("_service")?.get("sdl"))
                    .and_then(|s| s.as_str())
                {
                    Some(sdl) => return Ok(sdl.to_owned()),
                    None => format!("no SDL in the answer: {:?}", response.errors),
                }
            }
            Err(err) => err.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("subgraph {name}: cannot fetch its SDL: {error}");
        }
        tracing::info!(subgraph = name, %error, "waiting for subgraph");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
