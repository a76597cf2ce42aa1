//! Automatic persisted queries exactly as Apollo Client's persisted-queries link speaks them
//! (hash first, over GET; the query on `PersistedQueryNotFound`), shared by two routers through
//! Redis; and trusted documents.

use pyairtable_kit::config::Environment;
use pyairtable_router::TrustedDocuments;
use pyairtable_router::persisted::sha256_hex;
use serde_json::{Value, json};

use crate::{Edge, options, redis, start, unique_prefix};

const QUERY: &str = "query Me { me { id name } }";

fn extensions(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// What the link sends first with `useGETForHashedQueries`: a GET without the query.
async fn hashed_get(edge: &Edge, query: &str) -> crate::Reply {
    let extensions = extensions(&sha256_hex(query)).to_string();
    let params = [("operationName", "Me"), ("variables", "{}"), ("extensions", extensions.as_str())];
    // Apollo Client's HttpLink sends `content-type: application/json` on GET too.
    edge.get(
        &params,
        &[
            ("content-type", "application/json"),
            ("accept", "application/graphql-response+json,application/json;q=0.9"),
        ],
    )
    .await
}

/// What it sends after `PersistedQueryNotFound`: a POST with the query and the hash.
async fn full_post(edge: &Edge, query: &str) -> crate::Reply {
    let body = json!({ "operationName": "Me", "variables": {}, "extensions": extensions(&sha256_hex(query)), "query": query });
    edge.post(body, &[]).await
}

#[tokio::test]
async fn the_apollo_link_exchange() {
    let edge = start(options()).await;
    let miss = hashed_get(&edge, QUERY).await;
    assert_eq!(miss.code(), "PERSISTED_QUERY_NOT_FOUND", "{}", miss.body);
    assert_eq!(miss.body["errors"][0]["message"], "PersistedQueryNotFound");
    assert!(miss.body.get("data").is_none());
    let registered = full_post(&edge, QUERY).await;
    assert_eq!(registered.body, json!({ "data": { "me": { "id": "u1", "name": "Ada" } } }));
    let hit = hashed_get(&edge, QUERY).await;
    assert_eq!((hit.status, &hit.body), (200, &registered.body));
    let posted = edge.post(json!({ "extensions": extensions(&sha256_hex(QUERY)) }), &[]).await;
    assert_eq!(posted.body, registered.body, "POST with the hash alone");
}

#[tokio::test]
async fn bad_hashes_versions_and_documents_are_refused() {
    let edge = start(options()).await;
    let body = json!({ "query": QUERY, "extensions": extensions(&sha256_hex("{ tags }")) });
    assert_eq!(edge.post(body, &[]).await.code(), "PERSISTED_QUERY_HASH_MISMATCH");
    let v2 = json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": sha256_hex(QUERY) } } });
    assert_eq!(edge.post(v2, &[]).await.code(), "PERSISTED_QUERY_NOT_SUPPORTED");
    let short = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "abc" } } });
    assert_eq!(edge.post(short, &[]).await.code(), "BAD_REQUEST");
    // A query that does not validate is never stored.
    let invalid = "query Me { nope }";
    assert_eq!(full_post(&edge, invalid).await.code(), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(hashed_get(&edge, invalid).await.code(), "PERSISTED_QUERY_NOT_FOUND");
    let mut off = options();
    off.edge.apq = false;
    let edge = start(off).await;
    let reply = hashed_get(&edge, QUERY).await;
    assert_eq!(
        (reply.code(), &reply.body["errors"][0]["message"]),
        ("PERSISTED_QUERY_NOT_SUPPORTED", &json!("PersistedQueryNotSupported"))
    );
}

#[tokio::test]
async fn routers_sharing_redis_share_persisted_queries() {
    let mut options = options();
    options.edge.redis_prefix = unique_prefix();
    let (mut first, mut second) = (options.clone(), options);
    first.redis = Some(redis().await);
    second.redis = Some(redis().await);
    let (a, b) = (start(first).await, start(second).await);
    assert_eq!(full_post(&a, QUERY).await.status, 200);
    let hit = hashed_get(&b, QUERY).await;
    assert_eq!(hit.body["data"]["me"]["name"], "Ada", "{}", hit.body);
}

fn trusted(path: &std::path::Path) -> std::sync::Arc<TrustedDocuments> {
    std::sync::Arc::new(TrustedDocuments::load(path).expect("trusted documents load"))
}

#[tokio::test]
async fn only_trusted_documents_run_when_a_list_is_configured() {
    let folder = tempfile::tempdir().expect("tempdir");
    std::fs::write(folder.path().join("me.graphql"), QUERY).expect("write");
    let mut options = options();
    options.trusted_documents = Some(trusted(folder.path()));
    let edge = start(options.clone()).await;
    assert_eq!(hashed_get(&edge, QUERY).await.body["data"]["me"]["name"], "Ada", "by hash, never registered");
    assert_eq!(edge.query(QUERY, &[]).await.status, 200, "by its exact text");
    let by_id = edge.post(json!({ "documentId": format!("sha256:{}", sha256_hex(QUERY)) }), &[]).await;
    assert_eq!(by_id.body["data"]["me"]["id"], "u1");
    for refused in [
        edge.query("query Me { tags }", &[]).await,
        hashed_get(&edge, "query Me { tags }").await,
        full_post(&edge, "query Me { tags }").await,
    ] {
        assert_eq!(refused.code(), "PERSISTED_QUERY_NOT_IN_LIST", "{}", refused.body);
    }
    assert!(
        edge.query("{ __schema { queryType { name } } }", &[]).await.body["data"].is_object(),
        "introspection in development"
    );

    let empty = tempfile::tempdir().expect("tempdir");
    assert!(TrustedDocuments::load(empty.path()).is_err_and(|e| e.contains("no documents")));
    assert!(TrustedDocuments::load(&empty.path().join("missing.json")).is_err());
    let manifest = folder.path().join("manifest.json");
    let operations = json!({ "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{ "id": "me-1", "name": "Me", "type": "query", "body": QUERY }] });
    std::fs::write(&manifest, operations.to_string()).expect("write");
    options.trusted_documents = Some(trusted(&manifest));
    options.edge.environment = Environment::Production;
    options.edge.introspection = true;
    let edge = start(options).await;
    assert_eq!(edge.post(json!({ "documentId": "me-1" }), &[]).await.body["data"]["me"]["id"], "u1");
    assert_eq!(
        edge.query("{ __schema { queryType { name } } }", &[]).await.code(),
        "PERSISTED_QUERY_NOT_IN_LIST",
        "no escape in production"
    );
}
