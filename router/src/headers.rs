//! Header propagation: the client headers named by `PYAIRTABLE_PROPAGATE_HEADERS` travel with
//! every subgraph fetch of the request (task-local, so the executor needs no new parameter; the
//! HTTP transport reads them). `Authorization`, cookies and anything else are not forwarded
//! unless listed; the router's own headers can never be.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// Headers to forward, in the order the client sent them.
pub type Propagated = Arc<Vec<(HeaderName, HeaderValue)>>;

tokio::task_local! {
    static PROPAGATED: Propagated;
}

/// The client's headers named in `names` (lower case).
pub fn select(headers: &HeaderMap, names: &[String]) -> Propagated {
    let selected = names
        .iter()
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .flat_map(|name| {
            headers.get_all(&name).iter().map(move |v| (name.clone(), v.clone())).collect::<Vec<_>>()
        })
        .collect();
    Arc::new(selected)
}

/// Runs `future` with `headers` forwarded by its subgraph fetches.
pub async fn forwarding<F: Future>(headers: Propagated, future: F) -> F::Output {
    PROPAGATED.scope(headers, future).await
}

/// The headers the current request forwards (none outside [`forwarding`]).
pub fn current() -> Propagated {
    PROPAGATED.try_with(Arc::clone).unwrap_or_default()
}
