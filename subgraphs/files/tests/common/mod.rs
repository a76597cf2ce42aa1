//! Helpers of the files subgraph's tests: a served files subgraph (permissions in process) with
//! an organization and a workspace, and the HTTP calls a client makes to signed URLs.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::Cursor;

use pyairtable_kit::Caller;
use pyairtable_kit::testing::{GraphQLClient, SubgraphHarness, test_database};
use serde_json::{Value, json};
use uuid::Uuid;

/// The public URL the harness's configuration defaults to (signed URLs start with it).
const DEFAULT_BASE: &str = "http://127.0.0.1:4000";

/// A bare ELF header (64 bytes): a Linux program.
pub const ELF: &[u8] = &[
    0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0x38, 0, 1, 0, 0, 0, 0, 0, 0, 0,
    0, 0,
];

pub const CREATE_UPLOAD: &str = "mutation($w: ID!, $n: String!, $s: BigInt!, $t: String!, $h: String) {
    createUpload(workspaceId: $w, name: $n, size: $s, contentType: $t, sha256: $h) { url method expiresAt file { id ready } } }";
pub const COMPLETE: &str =
    "mutation($id: ID!) { completeUpload(id: $id) { id name size contentType sha256 ready } }";
pub const READ: &str = "query($id: ID!) { file(id: $id) { id name size contentType sha256 downloadUrl owner { id } workspace { id } thumbnail { url width height } } }";

/// A files subgraph with one organization (owned by `owner`) and one of its workspaces.
pub struct World {
    pub harness: SubgraphHarness,
    pub owner: Uuid,
    pub org: Uuid,
    pub ws: Uuid,
    pub client: GraphQLClient,
}

impl World {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let harness = SubgraphHarness::start_on(
            test_database().await,
            extra,
            &[pyairtable_permissions::subgraph],
            pyairtable_files::subgraph,
        )
        .await;
        let owner = Uuid::now_v7();
        let org = organization(&harness, owner).await;
        let ws = workspace(&harness, org, owner).await;
        let client = harness.client(&Caller::user(owner));
        Self { harness, owner, org, ws, client }
    }

    /// A signed URL of this service as the client can reach it (the harness listens on a port
    /// the configuration could not know).
    pub fn reach(&self, url: &str) -> String {
        match url.strip_prefix(DEFAULT_BASE) {
            Some(path) => format!("http://{}{path}", self.harness.server.addr),
            None => url.to_owned(),
        }
    }

    /// The folder of the local object store.
    pub fn store_dir(&self) -> std::path::PathBuf {
        match &self.harness.kit.config.files.store {
            pyairtable_kit::config::ObjectStoreConfig::Local(dir) => dir.clone(),
            other => panic!("not a local store: {other:?}"),
        }
    }

    /// Starts an upload; the `createUpload` answer (or the error code).
    pub async fn create_upload(
        &self,
        client: &GraphQLClient,
        name: &str,
        bytes: &[u8],
        declared: &str,
    ) -> Result<Value, String> {
        let vars = json!({ "w": self.ws, "n": name, "s": bytes.len(), "t": declared, "h": null });
        let (_, body) = client.send(CREATE_UPLOAD, vars).await;
        match body["errors"][0]["extensions"]["code"].as_str() {
            Some(code) => Err(code.to_owned()),
            None => Ok(body["data"]["createUpload"].clone()),
        }
    }

    /// createUpload → PUT → completeUpload; the completed file.
    pub async fn upload(&self, name: &str, bytes: &[u8], declared: &str) -> Value {
        let upload = self.create_upload(&self.client, name, bytes, declared).await.expect("createUpload");
        let (status, body) = put(&self.reach(upload["url"].as_str().expect("url")), bytes.to_vec()).await;
        assert!(status < 300, "PUT: {status} {body}");
        self.client.data(COMPLETE, json!({ "id": upload["file"]["id"] })).await["completeUpload"].clone()
    }
}

/// An organization owned by `owner`, as the tenants subgraph announces it.
pub async fn organization(harness: &SubgraphHarness, owner: Uuid) -> Uuid {
    let org = Uuid::now_v7();
    harness.publish("organization.created", json!({ "organization_id": org, "owner_id": owner })).await;
    org
}

/// A workspace of `org` created by `creator`, as the workspaces subgraph announces it.
pub async fn workspace(harness: &SubgraphHarness, org: Uuid, creator: Uuid) -> Uuid {
    let ws = Uuid::now_v7();
    let payload =
        json!({ "workspace_id": ws, "organization_id": org, "created_by": creator, "name": "Shared" });
    harness.publish("workspace.created", payload).await;
    ws
}

/// `PUT url` with `bytes`; the status and the JSON answer.
pub async fn put(url: &str, bytes: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new().put(url).body(bytes).send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET url`: the status, the headers and the body.
pub async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::get(url).await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.expect("a body").to_vec())
}

/// A PNG of `width`×`height`.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image =
        image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).expect("encode");
    bytes
}

/// SHA-256, hexadecimal.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits (bounded) until `file(id)` has a thumbnail; returns the file.
pub async fn with_thumbnail(client: &GraphQLClient, id: &Value) -> Value {
    for _ in 0..120 {
        let file = client.data(READ, json!({ "id": id })).await["file"].clone();
        if !file["thumbnail"].is_null() {
            return file;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("no thumbnail within 30 s");
}

/// A multipart request (GraphQL multipart request spec) uploading `bytes` as `name`.
pub fn multipart(ws: Uuid, name: &str, content_type: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    let operations = json!({
        "query": "mutation($w: ID!, $f: Upload!) { uploadFile(workspaceId: $w, file: $f) { id name size contentType sha256 } }",
        "variables": { "w": ws, "f": null },
    });
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(content_type)
        .expect("mime");
    reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.f"] }).to_string())
        .part("0", part)
}
