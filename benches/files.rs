//! Files benchmark: upload and download throughput of 1 MiB and 256 MiB files through the files
//! service (signed URL `PUT` + `completeUpload`, signed URL `GET`, all through `pyairtable serve`)
//! beside a plain copy of the same bytes to the same store (object_store, no service), and the
//! server's peak memory. Run with `make bench-files` (release build); PostgreSQL as for the tests.
//! Figures are only comparable within one run.

use std::time::{Duration, Instant};

mod common;

use bytes::Bytes;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use pyairtable_kit::testing::{GraphQLClient, test_database};
use serde_json::{Value, json};

use common::{memory_mib, serve};

const MIB: usize = 1024 * 1024;
/// (file size, repetitions)
const CASES: [(usize, usize); 2] = [(MIB, 40), (256 * MIB, 3)];
const CHUNK: usize = 256 * 1024;

/// `size` bytes, made on the fly in chunks (never whole in memory).
fn body(size: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    futures::stream::iter((0..size.div_ceil(CHUNK)).map(move |i| {
        let len = CHUNK.min(size - i * CHUNK);
        Ok(chunk.slice(..len))
    }))
}

fn peak_rss_mib(pid: u32) -> f64 {
    memory_mib(pid, "VmHWM")
}

/// A signed-in user's client and a workspace of theirs.
async fn seed(graphql: &GraphQLClient) -> (GraphQLClient, Value) {
    let sign_up = "mutation { signUp(input: { email: \"bench@example.com\", password: \"correct horse battery staple\", displayName: \"Bench\" }) { tokens { accessToken } } }";
    let token = graphql.data(sign_up, json!({})).await["signUp"]["tokens"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let client = graphql.clone().with_header("authorization", &format!("Bearer {token}"));
    let org =
        client.data("mutation { createOrganization(input: { name: \"Bench\" }) { id } }", json!({})).await;
    let ws = client
        .data(
            "mutation($o: ID!) { createWorkspace(organizationId: $o, name: \"Bench\") { id } }",
            json!({ "o": org["createOrganization"]["id"] }),
        )
        .await["createWorkspace"]["id"]
        .clone();
    (client, ws)
}

/// Upload through the service; returns the download URL.
async fn service_upload(client: &GraphQLClient, http: &reqwest::Client, ws: &Value, size: usize) -> String {
    let create = "mutation($w: ID!, $s: BigInt!) { createUpload(workspaceId: $w, name: \"bench.bin\", size: $s, contentType: \"application/octet-stream\") { url file { id } } }";
    let upload = client.data(create, json!({ "w": ws, "s": size })).await["createUpload"].clone();
    let put = http
        .put(upload["url"].as_str().expect("url"))
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(body(size)));
    assert!(put.send().await.expect("PUT").status().is_success());
    let complete = "mutation($id: ID!) { completeUpload(id: $id) { downloadUrl } }";
    client.data(complete, json!({ "id": upload["file"]["id"] })).await["completeUpload"]["downloadUrl"]
        .as_str()
        .expect("url")
        .to_owned()
}

async fn service_download(http: &reqwest::Client, url: &str) -> usize {
    let mut stream = http.get(url).send().await.expect("GET").bytes_stream();
    let mut size = 0;
    while let Some(chunk) = stream.next().await {
        size += chunk.expect("bytes").len();
    }
    size
}

async fn plain_upload(store: &LocalFileSystem, path: &Path, size: usize) {
    let mut writer =
        WriteMultipart::new_with_chunk_size(store.put_multipart(path).await.expect("upload"), 8 * MIB);
    let mut source = std::pin::pin!(body(size));
    while let Some(chunk) = source.next().await {
        writer.wait_for_capacity(2).await.expect("capacity");
        writer.put(chunk.expect("chunk"));
    }
    writer.finish().await.expect("finish");
}

async fn plain_download(store: &LocalFileSystem, path: &Path) -> usize {
    let got = store.get(path).await.expect("get");
    let object_store::GetResultPayload::File(file, _) = got.payload else { panic!("a local file") };
    let mut stream = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), CHUNK);
    let mut size = 0;
    while let Some(chunk) = stream.next().await {
        size += chunk.expect("bytes").len();
    }
    size
}

fn mib_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / MIB as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let db = test_database().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut server = serve(db.url(), data_dir.path(), &[("PYAIRTABLE_FILES_MAX_SIZE", "1GiB")]).await;
    let pid = server.child.id().expect("running");
    let graphql = GraphQLClient::new(format!("{}/graphql", server.base));
    let (client, ws) = seed(&graphql).await;
    let http = reqwest::Client::new();
    let store = LocalFileSystem::new_with_prefix(data_dir.path().join("files")).expect("the same store");
    let idle = peak_rss_mib(pid);
    println!("files benchmark: local store, same disk; throughput in MiB/s (higher is better)\n");
    println!(
        "{:>9}  {:>14} {:>14} {:>7}  {:>14} {:>14} {:>7}",
        "size", "upload svc", "plain copy", "ratio", "download svc", "plain read", "ratio"
    );
    for (size, reps) in CASES {
        let (mut up, mut down, mut plain_up, mut plain_down) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for rep in 0..reps {
            let started = Instant::now();
            let url = service_upload(&client, &http, &ws, size).await;
            up += started.elapsed();
            let started = Instant::now();
            assert_eq!(service_download(&http, &url).await, size);
            down += started.elapsed();
            let path = Path::from(format!("bench-plain/{size}-{rep}"));
            let started = Instant::now();
            plain_upload(&store, &path, size).await;
            plain_up += started.elapsed();
            let started = Instant::now();
            assert_eq!(plain_download(&store, &path).await, size);
            plain_down += started.elapsed();
        }
        let total = size * reps;
        let (u, pu, d, pd) = (
            mib_per_s(total, up),
            mib_per_s(total, plain_up),
            mib_per_s(total, down),
            mib_per_s(total, plain_down),
        );
        println!(
            "{:>6} MiB  {u:>14.0} {pu:>14.0} {:>6.2}x  {d:>14.0} {pd:>14.0} {:>6.2}x",
            size / MIB,
            u / pu,
            d / pd
        );
    }
    println!(
        "\npyairtable serve peak RSS: {idle:.0} MiB before the files, {:.0} MiB after",
        peak_rss_mib(pid)
    );
    let _ = server.child.start_kill();
}
