//! Files through the router, in both deployment modes: signed uploads and downloads, multipart
//! requests passed through to the files subgraph, `File` fields resolved by other subgraphs,
//! `User.avatar` across subgraphs (`@requires`), tenants kept apart; and a gigabyte streamed
//! through `pyairtable serve` with its memory measured.

mod common;

use common::topology::{env, topology};
use common::{Process, bearer, sign_up};
use futures::StreamExt;
use pyairtable_kit::testing::{GraphQLClient, test_database};
use serde_json::{Value, json};
use sha2::Digest;

const CREATE_UPLOAD: &str = "mutation($w: ID!, $n: String!, $s: BigInt!, $t: String!) {
    createUpload(workspaceId: $w, name: $n, size: $s, contentType: $t) { url file { id } } }";
const COMPLETE: &str = "mutation($id: ID!) { completeUpload(id: $id) {
    id name size contentType downloadUrl owner { displayName } workspace { name } } }";

/// A signed-up user with an organization and a workspace; (client, token, workspace id).
async fn member(router: &GraphQLClient, email: &str) -> (GraphQLClient, String, Value) {
    let (_, token, _) = sign_up(router, email, email).await;
    let client = bearer(router, &token);
    let create = "mutation($n: String!) { createOrganization(input: { name: $n }) { id } }";
    let org = client.data(create, json!({ "n": format!("Org of {email}") })).await;
    let create = "mutation($o: ID!) { createWorkspace(organizationId: $o, name: \"Docs\") { id } }";
    let ws =
        client.data(create, json!({ "o": org["createOrganization"]["id"] })).await["createWorkspace"]["id"]
            .clone();
    (client, token, ws)
}

fn png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).expect("encode");
    bytes
}

async fn scenario(router: &GraphQLClient, base_url: &str) {
    let (ada, token, ws) = member(router, "ada@example.com").await;
    let bytes = png();
    let vars = json!({ "w": ws, "n": "me.png", "s": bytes.len(), "t": "image/png" });
    let upload = ada.data(CREATE_UPLOAD, vars).await["createUpload"].clone();
    let put =
        reqwest::Client::new().put(upload["url"].as_str().expect("url")).body(bytes.clone()).send().await;
    assert!(put.expect("the upload URL answers").status().is_success());
    let file = ada.data(COMPLETE, json!({ "id": upload["file"]["id"] })).await["completeUpload"].clone();
    // Fields of the file from three subgraphs: files, users (owner) and workspaces.
    assert_eq!(
        (&file["owner"]["displayName"], &file["workspace"]["name"]),
        (&json!("ada@example.com"), &json!("Docs"))
    );
    let download = reqwest::get(file["downloadUrl"].as_str().expect("url")).await.expect("download");
    assert_eq!(download.bytes().await.expect("bytes").to_vec(), bytes);

    // The avatar: users holds its id, files resolves it (`@requires(fields: "avatarFileId")`).
    let set = "mutation($f: ID) { updateMyProfile(input: { avatarFileId: $f }) { avatarFileId } }";
    ada.data(set, json!({ "f": file["id"] })).await;
    let me = ada.data("{ me { avatar { id contentType } } }", json!({})).await;
    assert_eq!(me["me"]["avatar"], json!({ "id": file["id"], "contentType": "image/png" }));

    // A multipart request through the router, with and without the preflight header.
    let multipart = |preflight: bool| upload_by_multipart(base_url, &token, &ws, preflight);
    let (status, body) = multipart(true).await;
    assert_eq!(
        (status, &body["data"]["uploadFile"]),
        (200, &json!({ "name": "hello.txt", "contentType": "text/plain" })),
        "{body}"
    );
    let (status, body) = multipart(false).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (400, &json!("CSRF_PREVENTED")));

    // Another organization sees none of it.
    let (eve, _, _) = member(router, "eve@example.com").await;
    let read = "query($id: ID!) { file(id: $id) { name } }";
    assert_eq!(eve.data(read, json!({ "id": file["id"] })).await["file"], Value::Null);
    let vars = json!({ "w": ws, "n": "x.txt", "s": 1, "t": "text/plain" });
    assert_eq!(common::code(&eve, CREATE_UPLOAD, vars).await, "NOT_FOUND");

    // Deleted: gone from the profile too.
    assert_eq!(
        ada.data("mutation($id: ID!) { deleteFile(id: $id) }", json!({ "id": file["id"] })).await["deleteFile"],
        true
    );
    assert_eq!(ada.data("{ me { avatar { id } } }", json!({})).await["me"]["avatar"], Value::Null);
}

/// A multipart upload of a small text file to `ws`: (status, body; `retryAfterHeader: true` in the
/// body when the response carried `Retry-After`).
async fn upload_by_multipart(base_url: &str, token: &str, ws: &Value, preflight: bool) -> (u16, Value) {
    let operations = json!({ "query": "mutation($w: ID!, $f: Upload!) { uploadFile(workspaceId: $w, file: $f) { name contentType } }", "variables": { "w": ws, "f": null } });
    let part = reqwest::multipart::Part::bytes(b"hello, files".to_vec())
        .file_name("hello.txt")
        .mime_str("text/plain")
        .expect("mime");
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.f"] }).to_string())
        .part("0", part);
    let mut request =
        reqwest::Client::new().post(format!("{base_url}/graphql")).bearer_auth(token).multipart(form);
    if preflight {
        request = request.header("apollo-require-preflight", "true");
    }
    let response = request.send().await.expect("the router answers");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").is_some();
    let mut body: Value = response.json().await.expect("json");
    if retry_after {
        body["retryAfterHeader"] = json!(true);
    }
    (status, body)
}

#[tokio::test]
async fn uploads_draw_on_the_same_rate_limits_as_every_request() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut env = env(db.url(), data_dir.path());
    env.remove("REDIS_URL");
    env.insert("PYAIRTABLE_RATE_LIMIT_CALLER".into(), "8/1m".into());
    let server = Process::start(&["serve"], &env, &std::env::temp_dir()).await;
    let (_, token, ws) = member(&server.graphql(), "ada@example.com").await;
    let mut refused = None;
    for _ in 0..10 {
        let (status, body) = upload_by_multipart(&server.base_url, &token, &ws, true).await;
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let body = refused.expect("a caller over its budget is refused uploads too");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
    assert_eq!(body["retryAfterHeader"], true);
    // One budget: the JSON endpoint refuses the same caller now.
    let (status, _) = bearer(&server.graphql(), &token).send("{ me { id } }", json!({})).await;
    assert_eq!(status, 429);
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn files_through_the_router_in_one_process() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut env = env(db.url(), data_dir.path());
    env.remove("REDIS_URL");
    let server = Process::start(&["serve"], &env, &std::env::temp_dir()).await;
    scenario(&server.graphql(), &server.base_url).await;
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn files_through_the_router_across_services() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let t = topology(&env(db.url(), data_dir.path()), &["router"]).await;
    scenario(&t.router.graphql(), &t.router.base_url).await;
    t.stop().await;
}

/// Peak resident memory (kB) of a process, from /proc.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number")
}

/// Deterministic bytes, made on the fly: chunk `i` of `CHUNK` bytes.
fn chunk(i: u64) -> bytes::Bytes {
    let seed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    bytes::Bytes::from((0..CHUNK).map(|j| (seed.wrapping_add(j as u64 * 31) >> 7) as u8).collect::<Vec<u8>>())
}

const CHUNK: usize = 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;
/// How much the server's peak memory may grow while a gigabyte goes up and comes back down.
const GROWTH_BOUND_KB: u64 = 256 * 1024;

#[tokio::test]
async fn a_gigabyte_streams_through_with_flat_memory() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut env = env(db.url(), data_dir.path());
    env.remove("REDIS_URL");
    env.insert("PYAIRTABLE_FILES_MAX_SIZE".into(), "2GiB".into());
    let server = Process::start(&["serve"], &env, &std::env::temp_dir()).await;
    let pid = server.child.id().expect("running");
    let (client, _, ws) = member(&server.graphql(), "big@example.com").await;
    let before = peak_rss_kb(pid);

    let vars = json!({ "w": ws, "n": "big.bin", "s": GIB, "t": "application/octet-stream" });
    let upload = client.data(CREATE_UPLOAD, vars).await["createUpload"].clone();
    let mut sent = sha2::Sha256::new();
    let body = futures::stream::iter(0..GIB / CHUNK as u64).map(chunk).map(Ok::<_, std::io::Error>);
    for i in 0..GIB / CHUNK as u64 {
        sent.update(chunk(i));
    }
    let put = reqwest::Client::new()
        .put(upload["url"].as_str().expect("url"))
        .header("content-length", GIB)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("the upload answers");
    assert!(put.status().is_success(), "{}", put.status());
    let file = client.data(COMPLETE, json!({ "id": upload["file"]["id"] })).await["completeUpload"].clone();
    assert_eq!(file["size"].as_u64(), Some(GIB));

    let response = reqwest::get(file["downloadUrl"].as_str().expect("url")).await.expect("download");
    let mut stream = response.bytes_stream();
    let (mut received, mut size) = (sha2::Sha256::new(), 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("bytes");
        size += chunk.len() as u64;
        received.update(&chunk);
    }
    assert_eq!((size, received.finalize()), (GIB, sent.finalize()));
    let after = peak_rss_kb(pid);
    eprintln!("pyairtable serve peak RSS: {before} kB before, {after} kB after 1 GiB up and down");
    assert!(after - before < GROWTH_BOUND_KB, "peak RSS grew by {} kB", after - before);
    assert!(server.terminate().await.success());
}
