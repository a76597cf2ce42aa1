//! The two protocols' messages, close codes and credentials.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::response::{GraphQLError, Response as GraphQLResponse};

/// The subprotocols, in the router's order of preference.
const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY: &str = "graphql-ws";

/// Close codes (graphql-transport-ws; the legacy protocol has none of its own).
pub(crate) mod close {
    pub const BAD_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
    /// The server could not check the credentials (the auth service is down).
    pub const UNAVAILABLE: u16 = 1011;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    TransportWs,
    Legacy,
}

impl Protocol {
    /// The first subprotocol the client offers that the router speaks; graphql-transport-ws
    /// when it offers none.
    pub(crate) fn chosen(headers: &HeaderMap) -> Option<Self> {
        let Some(offered) = headers.get(header::SEC_WEBSOCKET_PROTOCOL) else {
            return Some(Self::TransportWs);
        };
        offered.to_str().ok()?.split(',').map(str::trim).find_map(|p| match p {
            TRANSPORT_WS => Some(Self::TransportWs),
            LEGACY => Some(Self::Legacy),
            _ => None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::TransportWs => TRANSPORT_WS,
            Self::Legacy => LEGACY,
        }
    }

    pub(crate) fn next(self, id: &str, payload: &GraphQLResponse) -> String {
        let kind = if self == Self::TransportWs { "next" } else { "data" };
        json!({ "id": id, "type": kind, "payload": payload }).to_string()
    }

    pub(crate) fn keepalive(self) -> String {
        let kind = if self == Self::TransportWs { "ping" } else { "ka" };
        json!({ "type": kind }).to_string()
    }
}

pub(crate) fn error_message(id: &str, errors: &[GraphQLError]) -> String {
    json!({ "id": id, "type": "error", "payload": errors }).to_string()
}

pub(crate) fn complete_message(id: &str) -> String {
    json!({ "id": id, "type": "complete" }).to_string()
}

/// The `Authorization` value a client put in `connection_init`'s payload: `Authorization` or
/// `authorization` (`Bearer ...`), the same under `headers`, or a bare `authToken`/`token`.
pub(crate) fn credentials(payload: &Value) -> Option<String> {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let headers = payload.get("headers");
    let authorization = text(payload.get("Authorization"))
        .or_else(|| text(payload.get("authorization")))
        .or_else(|| text(headers.and_then(|h| h.get("Authorization"))))
        .or_else(|| text(headers.and_then(|h| h.get("authorization"))));
    authorization.or_else(|| {
        text(payload.get("authToken")).or_else(|| text(payload.get("token"))).map(|t| format!("Bearer {t}"))
    })
}
