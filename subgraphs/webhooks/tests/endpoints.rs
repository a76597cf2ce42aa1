//! Endpoints through GraphQL: the catalog, validation (each refusal with its `extensions.code`),
//! CRUD, secrets and their rotation, who may do what, tenant isolation, and SSRF refusals.

mod common;

use common::{CREATE, Receiver, endpoint, harness, harness_with, join, organization};
use pyairtable_kit::Caller;
use serde_json::{Value, json};
use uuid::Uuid;

const LIST: &str = "query($o: ID!) { webhookEndpoints(organizationId: $o, first: 10) {
    totalCount edges { node { id url description eventTypes enabled rateLimit } } } }";

#[tokio::test]
async fn endpoints_are_created_listed_updated_rotated_and_deleted() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let types = client.data("{ webhookEventTypes { name description } }", json!({})).await;
    let names: Vec<&str> = types["webhookEventTypes"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"workspace.created") && names.contains(&"webhook.endpoint_disabled"),
        "{names:?}"
    );

    let input = json!({ "url": "https://hooks.example.com/in", "description": " CRM ",
        "eventTypes": ["workspace.created", "member.invited", "workspace.created"], "rateLimit": 5,
        "headers": [{ "name": "X-Token", "value": "abc" }] });
    let created = client.data(CREATE, json!({ "o": org, "i": input })).await["createWebhookEndpoint"].clone();
    let secret = created["secret"].as_str().expect("secret");
    assert!(pyairtable_webhooks::signature::decode(secret).is_ok_and(|k| k.len() == 32), "{secret}");
    assert_eq!(created["eventTypes"], json!(["member.invited", "workspace.created"]));
    let id = created["id"].clone();
    let listed = client.data(LIST, json!({ "o": org })).await;
    assert_eq!(listed["webhookEndpoints"]["totalCount"], 1);
    assert_eq!(listed["webhookEndpoints"]["edges"][0]["node"]["description"], "CRM");

    let update =
        "mutation($id: ID!, $i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $i) {
        url enabled rateLimit eventTypes headers { name value } } }";
    let changed = client
        .data(update, json!({ "id": id, "i": { "enabled": false, "rateLimit": 0, "eventTypes": [] } }))
        .await["updateWebhookEndpoint"]
        .clone();
    assert_eq!(changed["enabled"], false);
    assert_eq!((&changed["rateLimit"], &changed["eventTypes"]), (&Value::Null, &json!([])));
    assert_eq!(changed["headers"], json!([{ "name": "x-token", "value": "abc" }]));

    let rotate =
        "mutation($id: ID!) { rotateWebhookEndpointSecret(id: $id) { secret previousSecretExpiresAt } }";
    let rotated = client.data(rotate, json!({ "id": id })).await["rotateWebhookEndpointSecret"].clone();
    assert_ne!(rotated["secret"].as_str(), Some(secret));
    let until: chrono::DateTime<chrono::Utc> =
        rotated["previousSecretExpiresAt"].as_str().expect("until").parse().expect("a time");
    let overlap = until - chrono::Utc::now();
    assert!(overlap > chrono::Duration::hours(23) && overlap <= chrono::Duration::hours(24), "{overlap}");
    let given =
        "mutation($id: ID!, $s: String) { rotateWebhookEndpointSecret(id: $id, secret: $s) { secret } }";
    let mine = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_eq!(
        client.data(given, json!({ "id": id, "s": mine })).await["rotateWebhookEndpointSecret"]["secret"],
        mine
    );
    assert_eq!(client.error_code(given, json!({ "id": id, "s": "whsec_c2hvcnQ=" })).await, "BAD_USER_INPUT");

    let delete = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }";
    assert_eq!(client.data(delete, json!({ "id": id })).await["deleteWebhookEndpoint"], true);
    assert_eq!(client.error_code(delete, json!({ "id": id })).await, "NOT_FOUND");
    assert_eq!(client.data(LIST, json!({ "o": org })).await["webhookEndpoints"]["totalCount"], 0);
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_the_field() {
    let harness = harness().await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    let cases = [
        (json!({ "url": "ftp://example.com/" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (json!({ "url": "https://example.com/", "eventTypes": ["user.registered"] }), "eventTypes"),
        (json!({ "url": "https://example.com/", "rateLimit": 0 }), "rateLimit"),
        (
            json!({ "url": "https://example.com/", "headers": [{ "name": "webhook-id", "value": "x" }] }),
            "headers",
        ),
        (
            json!({ "url": "https://example.com/", "headers": [{ "name": "bad name", "value": "x" }] }),
            "headers",
        ),
        (json!({ "url": "https://example.com/", "description": "x".repeat(501) }), "description"),
    ];
    for (input, field) in cases {
        let (_, body) = client.send(CREATE, json!({ "o": org, "i": input })).await;
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(error["extensions"]["field"], field, "{input}: {body}");
    }
    let (_, body) = client
        .send(CREATE, json!({ "o": org, "i": { "url": "https://example.com/", "eventTypes": ["nope"] } }))
        .await;
    assert!(
        body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("unknown event type \"nope\"")),
        "{body}"
    );
    assert_eq!(
        client.error_code("query { webhookEndpoint(id: \"x\") { id } }", json!({})).await,
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn members_read_admins_manage_and_other_tenants_see_nothing() {
    let harness = harness().await;
    let (ada, bob, eve) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let org = organization(&harness, ada).await;
    join(&harness, org, bob, "member").await;
    let other = organization(&harness, eve).await;
    let (ada_c, bob_c, eve_c) = (
        harness.client(&Caller::user(ada)),
        harness.client(&Caller::user(bob)),
        harness.client(&Caller::user(eve)),
    );
    let (id, _) = endpoint(&ada_c, org, "https://hooks.example.com/a", &[]).await;
    endpoint(&eve_c, other, "https://hooks.example.com/e", &[]).await;

    let read = "query($id: ID!) { webhookEndpoint(id: $id) { url messages(first: 5) { totalCount } } }";
    assert_eq!(
        bob_c.data(read, json!({ "id": id })).await["webhookEndpoint"]["url"],
        "https://hooks.example.com/a"
    );
    assert_eq!(bob_c.data(LIST, json!({ "o": org })).await["webhookEndpoints"]["totalCount"], 1);
    let secret = "query($id: ID!) { webhookEndpoint(id: $id) { secret } }";
    assert_eq!(bob_c.error_code(secret, json!({ "id": id })).await, "FORBIDDEN");
    let input = json!({ "o": org, "i": { "url": "https://hooks.example.com/b" } });
    assert_eq!(bob_c.error_code(CREATE, input.clone()).await, "FORBIDDEN");
    let test = "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { succeeded } }";
    assert_eq!(bob_c.error_code(test, json!({ "id": id })).await, "FORBIDDEN");

    assert_eq!(eve_c.error_code(read, json!({ "id": id })).await, "NOT_FOUND");
    assert_eq!(eve_c.error_code(secret, json!({ "id": id })).await, "NOT_FOUND");
    assert_eq!(eve_c.error_code(LIST, json!({ "o": org })).await, "NOT_FOUND");
    assert_eq!(eve_c.error_code(CREATE, input).await, "NOT_FOUND");
    assert_eq!(eve_c.error_code(test, json!({ "id": id })).await, "NOT_FOUND");
    let delete = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }";
    assert_eq!(eve_c.error_code(delete, json!({ "id": id })).await, "NOT_FOUND");
    assert_eq!(
        eve_c.data(LIST, json!({ "o": other })).await["webhookEndpoints"]["totalCount"],
        1,
        "own only"
    );
}

#[tokio::test]
async fn internal_targets_are_refused_at_creation_and_at_delivery() {
    let harness = harness_with(&[]).await;
    let ada = Uuid::now_v7();
    let org = organization(&harness, ada).await;
    let client = harness.client(&Caller::user(ada));
    for (url, why) in [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local (cloud metadata) address",
        ),
        ("http://[::1]:9/hook", "::1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "IPv4-mapped"),
    ] {
        let (_, body) = client.send(CREATE, json!({ "o": org, "i": { "url": url } })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{url}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{url}: {message}");
    }
    // A name is resolved when delivering, and every address it resolves to is checked.
    let receiver = Receiver::start(&[]).await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let (id, _) = endpoint(&client, org, &by_name, &[]).await;
    let test = "mutation($id: ID!) { sendTestWebhook(endpointId: $id) { succeeded responseStatus error } }";
    let attempt = client.data(test, json!({ "id": id })).await["sendTestWebhook"].clone();
    assert_eq!((&attempt["succeeded"], &attempt["responseStatus"]), (&json!(false), &Value::Null));
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.contains("localhost resolves only to addresses webhooks may not reach"), "{error}");
    assert!(error.contains("loopback"), "{error}");
    assert_eq!(receiver.count(), 0, "nothing reached the receiver");
}
