//! Subscriptions through the router: graphql-transport-ws and the legacy graphql-ws over
//! WebSocket, Server-Sent Events, entity fields from two other subgraphs on every event, the
//! protocol's close codes, identity per connection, backpressure and shutdown; in process and
//! over HTTP/WebSocket to the subgraphs. `node.rs`: the real graphql-ws npm client.

mod client;
mod graph;
mod node;

use std::time::Duration;

use client::{Client, Received};
use graph::{Graph, Mode, Notice};
use pyairtable_router::subscription::SubscriptionOptions;
use serde_json::{Value, json};

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY: &str = "graphql-ws";

const REVIEWS: &str = "subscription Reviews($upc: String) {
  reviewAdded(upc: $upc) { body product { upc name price } author { id username } }
}";

async fn connected(graph: &Graph, protocol: &str, key: &str) -> Client {
    let mut client = Client::connect(&graph.ws_url(), protocol).await;
    client.init(json!({ "Authorization": format!("Bearer {key}") })).await;
    client
}

fn expected_review(graph: &Graph, upc: &str, body: &str) -> Value {
    let alice = graph.users.alice.to_string();
    json!({ "reviewAdded": {
        "body": body,
        "product": { "upc": upc, "name": format!("Product {upc}"), "price": 10 },
        "author": { "id": alice, "username": format!("user-{alice}") },
    } })
}

async fn events_carry_fields_of_two_other_subgraphs(mode: Mode) {
    let graph = Graph::start(mode).await;
    let mut client = connected(&graph, TRANSPORT_WS, "pat_alice").await;
    client.subscribe("subscribe", "1", REVIEWS, json!({ "upc": "p2" })).await;
    graph.listening(1).await;
    graph.review("p1", "not this product");
    graph.review("p2", "great");
    graph.review("p2", "still great");
    for body in ["great", "still great"] {
        let next = client.message().await;
        assert_eq!(next["type"], "next", "{next}");
        assert_eq!(next["id"], "1");
        assert_eq!(next["payload"]["data"], expected_review(&graph, "p2", body), "{next}");
        assert!(next["payload"].get("errors").is_none(), "{next}");
    }
    client.send(json!({ "type": "complete", "id": "1" })).await;
    // The router lets go of the subgraph's stream once the client completes.
    graph.listening(0).await;
}

#[tokio::test]
async fn events_carry_fields_of_two_other_subgraphs_in_process() {
    events_carry_fields_of_two_other_subgraphs(Mode::InProcess).await;
}

#[tokio::test]
async fn events_carry_fields_of_two_other_subgraphs_over_websockets_to_subgraphs() {
    events_carry_fields_of_two_other_subgraphs(Mode::Http).await;
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_streams_the_same_events() {
    for mode in [Mode::InProcess, Mode::Http] {
        let graph = Graph::start(mode).await;
        let mut client = Client::connect(&graph.ws_url(), LEGACY).await;
        client.send(json!({ "type": "connection_init", "payload": { "authToken": "pat_alice" } })).await;
        assert_eq!(client.message().await["type"], "connection_ack");
        client.subscribe("start", "a", REVIEWS, json!({})).await;
        graph.listening(1).await;
        graph.review("p1", "legacy");
        let data = client.message().await;
        assert_eq!(data["type"], "data", "{data}");
        assert_eq!(data["payload"]["data"], expected_review(&graph, "p1", "legacy"));
        client.send(json!({ "type": "stop", "id": "a" })).await;
        graph.listening(0).await;
        client.send(json!({ "type": "connection_terminate" })).await;
        assert_eq!(client.closed().await.0, Some(1000));
    }
}

#[tokio::test]
async fn a_subscription_the_subgraph_completes_completes_for_the_client() {
    for mode in [Mode::InProcess, Mode::Http] {
        let graph = Graph::start(mode).await;
        let mut client = connected(&graph, TRANSPORT_WS, "pat_alice").await;
        client.subscribe("subscribe", "c", "subscription { countdown(from: 3) }", json!({})).await;
        for n in [3, 2, 1] {
            let next = client.message().await;
            assert_eq!(next["payload"]["data"]["countdown"], n, "{mode:?}: {next}");
        }
        let complete = client.message().await;
        assert_eq!(complete, json!({ "id": "c", "type": "complete" }), "{mode:?}");
    }
}

#[tokio::test]
async fn a_subgraph_refusing_a_subscription_is_an_error_with_its_path() {
    for mode in [Mode::InProcess, Mode::Http] {
        let graph = Graph::start(mode).await;
        let mut client = connected(&graph, TRANSPORT_WS, "pat_alice").await;
        client.subscribe("subscribe", "r", "subscription { refused }", json!({})).await;
        let next = client.message().await;
        assert_eq!(next["type"], "next", "{mode:?}: {next}");
        assert_eq!(next["payload"]["errors"][0]["message"], "not for you", "{mode:?}: {next}");
        assert_eq!(client.message().await["type"], "complete");
    }
}

#[tokio::test]
async fn each_connection_gets_only_its_callers_events() {
    for mode in [Mode::InProcess, Mode::Http] {
        let graph = Graph::start(mode).await;
        let mut alice = connected(&graph, TRANSPORT_WS, "pat_alice").await;
        let mut bob = connected(&graph, TRANSPORT_WS, "pat_bob").await;
        alice.subscribe("subscribe", "n", "subscription { myNotices }", json!({})).await;
        bob.subscribe("subscribe", "n", "subscription { myNotices }", json!({})).await;
        graph.listening(2).await;
        let notify =
            |to, text: &str| graph.bus.notices.send(Notice { to, text: text.into() }).expect("listeners");
        notify(graph.users.bob, "for bob");
        notify(graph.users.alice, "for alice");
        notify(graph.users.bob, "for bob again");
        assert_eq!(alice.message().await["payload"]["data"]["myNotices"], "for alice", "{mode:?}");
        assert_eq!(bob.message().await["payload"]["data"]["myNotices"], "for bob", "{mode:?}");
        assert_eq!(bob.message().await["payload"]["data"]["myNotices"], "for bob again", "{mode:?}");
        notify(graph.users.alice, "second for alice");
        // Alice's next message is hers: nothing of Bob's came in between.
        assert_eq!(alice.message().await["payload"]["data"]["myNotices"], "second for alice", "{mode:?}");
    }
}

#[tokio::test]
async fn anonymous_connections_may_not_subscribe() {
    let graph = Graph::start(Mode::InProcess).await;
    let mut client = Client::connect(&graph.ws_url(), TRANSPORT_WS).await;
    client.init(json!({})).await;
    client.subscribe("subscribe", "1", REVIEWS, json!({})).await;
    let error = client.message().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "1");
    assert_eq!(error["payload"][0]["extensions"]["code"], "UNAUTHENTICATED", "{error}");
    assert_eq!(graph.bus.listeners(), 0, "the subgraph was never asked");
}

#[tokio::test]
async fn the_protocol_close_codes() {
    let short =
        SubscriptionOptions { init_timeout: Duration::from_millis(300), ..SubscriptionOptions::default() };
    let graph = Graph::with(Mode::InProcess, short).await;
    let url = graph.ws_url();

    let mut silent = Client::connect(&url, TRANSPORT_WS).await;
    assert_eq!(silent.closed().await.0, Some(4408), "no connection_init in time");

    let mut early = Client::connect(&url, TRANSPORT_WS).await;
    early.subscribe("subscribe", "1", REVIEWS, json!({})).await;
    assert_eq!(early.closed().await.0, Some(4401), "subscribe before connection_ack");

    let mut forged = Client::connect(&url, TRANSPORT_WS).await;
    forged
        .send(json!({ "type": "connection_init", "payload": { "Authorization": "Bearer pat_nobody" } }))
        .await;
    assert_eq!(forged.closed().await, (Some(4403), "Forbidden".into()), "unknown credentials");

    let mut twice = connected(&graph, TRANSPORT_WS, "pat_alice").await;
    twice.send(json!({ "type": "connection_init" })).await;
    assert_eq!(twice.closed().await.0, Some(4429), "a second connection_init");

    let mut duplicate = connected(&graph, TRANSPORT_WS, "pat_alice").await;
    duplicate.subscribe("subscribe", "1", REVIEWS, json!({})).await;
    duplicate.subscribe("subscribe", "1", REVIEWS, json!({})).await;
    assert_eq!(duplicate.closed().await.0, Some(4409), "an id in use");

    for garbage in ["not json", r#"{"type":"launch"}"#, r#"{"id":"1"}"#] {
        let mut client = connected(&graph, TRANSPORT_WS, "pat_alice").await;
        client.send_text(garbage).await;
        assert_eq!(client.closed().await.0, Some(4400), "{garbage}");
    }

    let mut legacy = Client::connect(&url, LEGACY).await;
    legacy.send(json!({ "type": "connection_init", "payload": { "authToken": "pat_nobody" } })).await;
    assert_eq!(legacy.message().await["type"], "connection_error");
    assert_eq!(legacy.closed().await.0, Some(4403));
}

#[tokio::test]
async fn bad_operations_are_errors_for_their_id_and_the_socket_stays_open() {
    let graph = Graph::start(Mode::InProcess).await;
    let mut client = connected(&graph, TRANSPORT_WS, "pat_alice").await;
    client.subscribe("subscribe", "bad", "subscription { reviewAdded { nope } }", json!({})).await;
    let error = client.message().await;
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("bad")), "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{error}");
    // Queries and mutations run on the socket too: one `next`, then `complete`.
    client.subscribe("subscribe", "q", "{ topProducts { name } }", json!({})).await;
    let next = client.message().await;
    assert_eq!(next["payload"]["data"], json!({ "topProducts": [{ "name": "Product p1" }] }), "{next}");
    assert_eq!(client.message().await, json!({ "id": "q", "type": "complete" }));
}

#[tokio::test]
async fn subscriptions_over_plain_http_are_refused_with_a_pointer_to_the_transports() {
    let graph = Graph::start(Mode::InProcess).await;
    let response = reqwest::Client::new()
        .post(graph.http_url())
        .header("authorization", "Bearer pat_alice")
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": REVIEWS }))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("WebSocket") && message.contains("text/event-stream"), "{body}");
}

/// Reads Server-Sent Events from a response until `count` events arrived.
async fn sse_events(mut response: reqwest::Response, count: usize) -> Vec<(String, String)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk =
            tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.expect("an event in time");
        buffer.push_str(std::str::from_utf8(&chunk.expect("readable").expect("open")).expect("UTF-8"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .filter_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            if !field("event:").is_empty() {
                events.push((field("event:"), field("data:")));
            }
        }
    }
    events
}

#[tokio::test]
async fn server_sent_events_stream_a_subscription_to_http_clients() {
    let graph = Graph::start(Mode::Http).await;
    let request = reqwest::Client::new()
        .post(graph.http_url())
        .header("authorization", "Bearer pat_alice")
        .header("accept", "text/event-stream")
        .json(&json!({ "query": REVIEWS, "variables": { "upc": "p3" } }));
    let response = request.send().await.expect("answer");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/event-stream"));
    graph.listening(1).await;
    graph.review("p3", "over SSE");
    let events = sse_events(response, 1).await;
    assert_eq!(events[0].0, "next");
    let data: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(data["data"], expected_review(&graph, "p3", "over SSE"));

    // A finite one ends with `complete`, also over GET (with CSRF prevention's header).
    let countdown = reqwest::Client::new()
        .get(format!("{}?query={}", graph.http_url(), "subscription%7Bcountdown(from%3A2)%7D"))
        .header("authorization", "Bearer pat_alice")
        .header("accept", "text/event-stream")
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .expect("answer");
    assert_eq!(countdown.status(), 200);
    let events = sse_events(countdown, 3).await;
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["next", "next", "complete"]);
}

#[tokio::test]
async fn sse_refusals_are_ordinary_http_answers() {
    let graph = Graph::start(Mode::InProcess).await;
    let anonymous = reqwest::Client::new()
        .post(graph.http_url())
        .header("accept", "text/event-stream, application/graphql-response+json")
        .json(&json!({ "query": REVIEWS }))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), 401, "anonymous callers may not subscribe");
    let forged = reqwest::Client::new()
        .post(graph.http_url())
        .header("authorization", "Bearer pat_nobody")
        .header("accept", "text/event-stream")
        .json(&json!({ "query": REVIEWS }))
        .send()
        .await
        .expect("answer");
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn a_socket_whose_session_ends_is_closed_within_one_keepalive() {
    let quick =
        SubscriptionOptions { keepalive: Duration::from_millis(200), ..SubscriptionOptions::default() };
    let graph = Graph::with(Mode::Http, quick).await;
    let (token, session) = graph.token(graph.users.alice);
    let mut client = Client::connect(&graph.ws_url(), TRANSPORT_WS).await;
    client.init(json!({ "Authorization": format!("Bearer {token}") })).await;
    client.subscribe("subscribe", "n", "subscription { myNotices }", json!({})).await;
    graph.listening(1).await;
    graph
        .bus
        .notices
        .send(Notice { to: graph.users.alice, text: "while signed in".into() })
        .expect("listener");
    assert_eq!(client.message().await["payload"]["data"]["myNotices"], "while signed in");
    // Still open across keep-alives while the session lives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    graph.bus.notices.send(Notice { to: graph.users.alice, text: "still".into() }).expect("listener");
    assert_eq!(client.message().await["payload"]["data"]["myNotices"], "still");
    graph.revoke(session);
    assert_eq!(client.closed().await, (Some(4403), "Forbidden".into()), "logged out: no more events");
    graph.listening(0).await;
}

#[tokio::test]
async fn shutdown_closes_every_websocket_with_the_restart_code() {
    let graph = Graph::start(Mode::Http).await;
    let mut client = connected(&graph, TRANSPORT_WS, "pat_alice").await;
    client.subscribe("subscribe", "1", REVIEWS, json!({})).await;
    graph.listening(1).await;
    graph.lifecycle.stop(pyairtable_kit::StopReason::Restart);
    let (code, reason) = client.closed().await;
    assert_eq!(code, Some(1012), "service restart: reconnect elsewhere ({reason})");
    graph.listening(0).await;
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected_and_holds_bounded_memory() {
    let options = SubscriptionOptions {
        buffer: 4,
        write_timeout: Duration::from_millis(500),
        ..SubscriptionOptions::default()
    };
    let graph = Graph::with(Mode::InProcess, options).await;
    let mut client = connected(&graph, TRANSPORT_WS, "pat_alice").await;
    client.subscribe("subscribe", "1", REVIEWS, json!({})).await;
    graph.listening(1).await;
    // 64 KiB reviews, far more than socket buffers hold, while the client reads nothing.
    let body = "x".repeat(64 * 1024);
    for _ in 0..2000 {
        if graph.bus.listeners() == 0 {
            break;
        }
        let _ = graph.bus.reviews.send(graph::Review {
            id: async_graphql::ID("r".into()),
            body: body.clone(),
            upc: "p1".into(),
            author: async_graphql::ID(graph.users.alice.to_string()),
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The router cut the client off and let go of the subgraph's stream.
    graph.listening(0).await;
    let mut delivered = 0;
    while let Received::Message(_) = client.recv().await {
        delivered += 1;
    }
    assert!(delivered < 2000, "the router gave up on the client, it did not buffer everything ({delivered})");
}
