//! Cross-origin resource sharing, from [`Cors`]: development allows localhost origins on any port,
//! production none unless listed. Preflights are answered by the layer; responses expose the
//! request id and the rate-limit headers to scripts.

use axum::http::{HeaderName, HeaderValue, Method, request::Parts};
use pyairtable_kit::config::{Cors, Origins};
use tower_http::cors::{AllowOrigin, CorsLayer, ExposeHeaders};

/// The CORS layer of the router's routes.
pub fn layer(config: &Cors) -> CorsLayer {
    let origin = match &config.origins {
        Origins::None => AllowOrigin::predicate(|_, _| false),
        Origins::Localhost => AllowOrigin::predicate(|origin: &HeaderValue, _: &Parts| is_localhost(origin)),
        Origins::Any => AllowOrigin::any(),
        Origins::List(list) => AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())),
    };
    let methods: Vec<Method> = config.methods.iter().filter_map(|m| m.parse().ok()).collect();
    let headers: Vec<HeaderName> = config.headers.iter().filter_map(|h| h.parse().ok()).collect();
    let exposed =
        ["x-request-id", "ratelimit", "ratelimit-policy", "retry-after"].map(HeaderName::from_static);
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(methods)
        .allow_headers(headers)
        .allow_credentials(config.credentials)
        .expose_headers(ExposeHeaders::list(exposed))
        .max_age(config.max_age)
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, any port.
fn is_localhost(origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else { return false };
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    let host = match rest.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || is_port(port),
        None => rest.split_once(':').map_or((rest, ""), |(h, p)| (h, p)),
    };
    matches!(host.0, "localhost" | "127.0.0.1") && (host.1.is_empty() || host.1.parse::<u16>().is_ok())
}

fn is_port(suffix: &str) -> bool {
    suffix.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_means_loopback_names_on_any_port() {
        for ok in ["http://localhost:3000", "http://127.0.0.1", "https://localhost", "http://[::1]:5173"] {
            assert!(is_localhost(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "http://localhost.evil.com",
            "http://evil.com",
            "http://127.0.0.1.nip.io:80",
            "null",
            "http://[::1]x",
        ] {
            assert!(!is_localhost(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
