//! One operation on a socket, in its own task, and the socket's sending half.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use pyairtable_kit::Caller;
use tokio::sync::mpsc;

use super::protocol::{Protocol, complete_message, error_message};
use crate::flow::RequestContext;
use crate::headers::Propagated;
use crate::pipeline::{GraphQLRequest, Pipeline};
use crate::reply::tag;

/// What an operation's task tells the connection.
pub(crate) enum Event {
    /// A message for the client, from operation `id` (of generation `u64`).
    Send(String, u64, String),
    /// The operation ended; its last message, if any.
    Finished(String, u64, Option<String>),
}

/// The socket's sending half, with a deadline per message (a client that does not read is cut).
pub(crate) struct Writer {
    pub(crate) sink: SplitSink<WebSocket, Message>,
    pub(crate) timeout: std::time::Duration,
}

impl Writer {
    pub(crate) async fn text(&mut self, text: String) -> bool {
        let sent = tokio::time::timeout(self.timeout, self.sink.send(Message::Text(text.into()))).await;
        match sent {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::info!("disconnected a WebSocket client that does not read its messages");
                metrics::counter!("router_websocket_slow_clients_total").increment(1);
                false
            }
        }
    }

    pub(crate) async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = tokio::time::timeout(self.timeout, self.sink.send(Message::Close(Some(frame)))).await;
    }
}

/// Counts an open WebSocket in `router_websocket_connections_active` until dropped.
pub(crate) struct Open;

impl Open {
    pub(crate) fn enter() -> Self {
        metrics::gauge!("router_websocket_connections_active").increment(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("router_websocket_connections_active").decrement(1.0);
    }
}

/// One operation on a socket, in its own task.
pub(crate) struct Operation {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) protocol: Protocol,
    pub(crate) id: String,
    pub(crate) generation: u64,
    pub(crate) caller: Caller,
    pub(crate) api_key: Option<String>,
    pub(crate) request_id: String,
    pub(crate) propagated: Propagated,
    pub(crate) tx: mpsc::Sender<Event>,
}

impl Operation {
    pub(crate) async fn run(self, request: GraphQLRequest) {
        let context = RequestContext {
            request_id: &self.request_id,
            get: false,
            api_key: self.api_key.as_deref(),
            propagated: self.propagated.clone(),
            stream: true,
        };
        let (id, generation) = (self.id.clone(), self.generation);
        let mut responses = match self.pipeline.start(request, &self.caller, context).await {
            Ok(responses) => responses,
            Err(answer) => {
                let errors = tag(answer.outcome.into_response(), &self.request_id).errors;
                let _ = self
                    .tx
                    .send(Event::Finished(id, generation, Some(error_message(&self.id, &errors))))
                    .await;
                return;
            }
        };
        while let Some(response) = responses.next().await {
            let text = self.protocol.next(&self.id, &tag(response, &self.request_id));
            // The connection is gone when nobody receives: stop reading the subgraph.
            if self.tx.send(Event::Send(id.clone(), generation, text)).await.is_err() {
                return;
            }
        }
        let _ = self.tx.send(Event::Finished(id, generation, Some(complete_message(&self.id)))).await;
    }
}
