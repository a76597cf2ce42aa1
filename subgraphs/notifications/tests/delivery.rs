//! Delivery over real servers: SMTP (Python's aiosmtpd) accepting and refusing, retried with
//! backoff and marked failed after the limit; the HTTP provider adapter of SMS and push.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use pyairtable_kit::testing::smtp_server;
use pyairtable_notifications::{Channel, HttpChannel, Message};
use serde_json::{Value, json};

#[tokio::test]
async fn an_invitation_reaches_a_real_smtp_server() {
    let received = tempfile::tempdir().expect("dir");
    let (_smtp, port) = smtp_server("accept", received.path()).await;
    let url = format!("smtp://127.0.0.1:{port}");
    let harness = start(&[("SMTP_URL", &url)]).await;
    let owner = register(&harness, "owner@example.com", None).await;
    let org = organization(&harness, owner, "Acme").await;
    invite(&harness, org, "ada@example.com").await;
    let file = received.path().join("1.eml");
    eventually("the message at the SMTP server", || async { file.exists() }).await;
    let raw = std::fs::read_to_string(&file).expect("read");
    assert!(raw.starts_with("ada@example.com\n"), "{raw}");
    assert!(raw.contains("Subject: Join Acme on PyAirtable"), "{raw}");
    let sent = vec![("sent".to_owned(), 1, None)];
    eventually("the delivery recorded as sent", || async { deliveries(&harness, "email").await == sent })
        .await;
}

#[tokio::test]
async fn a_refusing_smtp_server_is_retried_with_backoff_then_the_delivery_is_marked_failed() {
    let received = tempfile::tempdir().expect("dir");
    let (_smtp, port) = smtp_server("refuse", received.path()).await;
    let url = format!("smtp://127.0.0.1:{port}");
    let extra = [
        ("SMTP_URL", url.as_str()),
        ("PYAIRTABLE_NOTIFICATIONS_MAX_ATTEMPTS", "3"),
        ("PYAIRTABLE_NOTIFICATIONS_RETRY_BASE_MS", "200"),
    ];
    let harness = start(&extra).await;
    let owner = register(&harness, "owner@example.com", None).await;
    let org = organization(&harness, owner, "Acme").await;
    let began = Instant::now();
    invite(&harness, org, "ada@example.com").await;
    eventually("a retry", || async {
        deliveries(&harness, "email").await.first().is_some_and(|(status, _, _)| status == "retrying")
    })
    .await;
    eventually("the failure", || async {
        deliveries(&harness, "email").await.first().is_some_and(|(status, _, _)| status == "failed")
    })
    .await;
    assert!(began.elapsed() >= Duration::from_millis(600), "backoff 200 ms, then 400 ms");
    let (_, attempts, reason) = deliveries(&harness, "email").await.remove(0);
    assert_eq!(attempts, 3);
    assert!(reason.as_deref().is_some_and(|r| r.contains("550")), "the refusal is the reason: {reason:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(deliveries(&harness, "email").await[0].1, 3, "no attempt after the limit");
}

/// A provider gateway: records each JSON body; answers 503 to the first request, 202 after.
async fn gateway() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let record = record.clone();
            async move {
                let mut seen = record.lock().expect("lock");
                seen.push(body);
                if seen.len() == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::ACCEPTED }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}/send"), seen)
}

#[tokio::test]
async fn the_http_provider_adapter_posts_json_and_reports_refusals() {
    let (url, seen) = gateway().await;
    let channel = HttpChannel::new(&url).expect("channel");
    let message = Message {
        channel: "sms",
        to: "+15550100".into(),
        subject: "Webhook disabled".into(),
        text: "20 failures in a row".into(),
        html: None,
        workflow: "webhook.endpoint_disabled".into(),
    };
    let refused = channel.send(&message).await.expect_err("the gateway is unavailable");
    assert!(refused.contains("503"), "{refused}");
    channel.send(&message).await.expect("sent");
    let bodies = seen.lock().expect("lock").clone();
    let expected = json!({
        "channel": "sms", "to": "+15550100", "subject": "Webhook disabled", "text": "20 failures in a row",
        "workflow": "webhook.endpoint_disabled",
    });
    assert_eq!(bodies, vec![expected.clone(), expected]);
    let down = HttpChannel::new("http://127.0.0.1:9/send").expect("channel").send(&message).await;
    assert!(down.is_err(), "a closed port is a failure, not a panic");
}
