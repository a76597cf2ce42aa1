//! GraphQL over Server-Sent Events (the graphql-sse protocol's "distinct connections" mode): a
//! `POST` (or, for queries and subscriptions, `GET`) with `Accept: text/event-stream` answers
//! with `event: next` for each response and `event: complete` at the end. A request refused
//! before execution gets the JSON answer and status an ordinary request would.

use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use pyairtable_kit::Caller;

use crate::flow::RequestContext;
use crate::http::exchange;
use crate::pipeline::{GraphQLRequest, Pipeline};
use crate::reply::{JSON, Reply, tag};
use crate::response::Response as GraphQLResponse;

/// Whether the client asks for an event stream.
pub(crate) fn wanted(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|media| media.trim().starts_with("text/event-stream")))
}

/// Runs the operation and streams its responses.
pub(crate) async fn respond(
    pipeline: &Arc<Pipeline>,
    request: GraphQLRequest,
    caller: &Caller,
    context: RequestContext<'_>,
    reply: &Reply<'_>,
) -> Response {
    let started = pipeline.start(request, caller, context).await;
    let responses = match started {
        Ok(responses) => responses,
        Err(answer) => return reply.exchange(exchange(answer, reply.media == JSON)),
    };
    let request_id = reply.request_id.to_owned();
    let events = responses
        .map(move |response| Ok::<_, Infallible>(next(tag(response, &request_id))))
        .chain(futures::stream::once(async { Ok(Event::default().event("complete").data("")) }));
    let keepalive = pipeline.options().subscriptions.keepalive;
    Sse::new(events).keep_alive(KeepAlive::new().interval(keepalive)).into_response()
}

fn next(response: GraphQLResponse) -> Event {
    let data = String::from_utf8(response.to_json())
        .unwrap_or_else(|_| r#"{"errors":[{"message":"internal server error"}]}"#.to_owned());
    Event::default().event("next").data(data)
}
