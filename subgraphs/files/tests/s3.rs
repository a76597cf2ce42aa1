//! The S3 backend against a real S3-compatible server started here (moto's server, from PyPI;
//! `.ci/run` installs it): presigned uploads go to a staging key, `completeUpload` checks the
//! bytes on their way to the file's own key, downloads are presigned with our headers.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{COMPLETE, ELF, READ, World, get, png, put, sha256, with_thumbnail};
use serde_json::json;

/// A moto server on a free port, with one bucket; killed when dropped.
struct Moto {
    _child: tokio::process::Child,
    endpoint: String,
}

async fn moto(bucket: &str) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = tokio::process::Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = http.put(format!("{endpoint}/{bucket}")).send().await {
            assert!(response.status().is_success(), "creating the bucket: {}", response.status());
            return Moto { _child: child, endpoint };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("moto's S3 server did not start within 20 s (python3 -m pip install 'moto[server]')");
}

async fn world(moto: &Moto) -> World {
    World::start(&[
        ("PYAIRTABLE_OBJECT_STORE_URL", "s3://pyairtable-test/some/prefix"),
        ("AWS_ENDPOINT_URL", &moto.endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ])
    .await
}

#[tokio::test]
async fn files_go_through_presigned_urls_to_and_from_s3() {
    let moto = moto("pyairtable-test").await;
    let w = world(&moto).await;
    let bytes = png(300, 200);
    let upload = w.create_upload(&w.client, "photo.png", &bytes, "image/png").await.expect("created");
    let url = upload["url"].as_str().expect("url");
    assert!(url.starts_with(&moto.endpoint) && url.contains("X-Amz-Signature"), "a presigned S3 URL: {url}");
    assert!(url.contains("/pyairtable-test/some/prefix/staging/"), "{url}");
    assert_eq!(
        w.client.error_code(COMPLETE, json!({ "id": upload["file"]["id"] })).await,
        "UPLOAD_INVALID",
        "no bytes yet"
    );
    let (status, body) = put(url, bytes.clone()).await;
    assert!(status < 300, "{status} {body}");
    let file = w.client.data(COMPLETE, json!({ "id": upload["file"]["id"] })).await["completeUpload"].clone();
    assert_eq!((&file["contentType"], &file["sha256"]), (&json!("image/png"), &json!(sha256(&bytes))));

    let read = with_thumbnail(&w.client, &file["id"]).await;
    let download = read["downloadUrl"].as_str().expect("url");
    assert!(download.starts_with(&moto.endpoint), "{download}");
    let (status, headers, body) = get(download).await;
    assert_eq!((status, body == bytes), (200, true));
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"photo.png\"; filename*=UTF-8''photo.png"
    );
    let (status, _, thumb) = get(read["thumbnail"]["url"].as_str().expect("url")).await;
    assert!(status == 200 && thumb.starts_with(b"\x89PNG"));

    // The staging object is gone; the file's own key holds the bytes.
    let listed = reqwest::get(format!("{}/pyairtable-test?list-type=2&prefix=some/prefix/", moto.endpoint))
        .await
        .expect("list")
        .text()
        .await
        .expect("xml");
    assert!(
        !listed.contains("/staging/") && listed.contains(&format!("tenants/{}/files/", w.org)),
        "{listed}"
    );
}

#[tokio::test]
async fn s3_uploads_are_checked_before_they_become_visible() {
    let moto = moto("pyairtable-test").await;
    let w = world(&moto).await;
    // An executable renamed .png reaches the bucket, but never the file's key.
    let exe = w.create_upload(&w.client, "cat.png", ELF, "image/png").await.expect("created");
    assert!(put(exe["url"].as_str().expect("url"), ELF.to_vec()).await.0 < 300);
    assert_eq!(
        w.client.error_code(COMPLETE, json!({ "id": exe["file"]["id"] })).await,
        "UNSUPPORTED_MEDIA_TYPE"
    );
    assert_eq!(
        w.client.data(READ, json!({ "id": exe["file"]["id"] })).await["file"],
        serde_json::Value::Null
    );
    // Other bytes than declared (the server took them: only the check stops them).
    let vars = json!({ "w": w.ws, "n": "a.txt", "s": 5, "t": "text/plain", "h": sha256(b"hello") });
    let summed = w.client.data(common::CREATE_UPLOAD, vars).await["createUpload"].clone();
    assert!(put(summed["url"].as_str().expect("url"), b"HELLO".to_vec()).await.0 < 300);
    assert_eq!(w.client.error_code(COMPLETE, json!({ "id": summed["file"]["id"] })).await, "UPLOAD_INVALID");
    // Deleted, then swept: the objects leave the bucket.
    let file = w.upload("keep.txt", b"for a while", "text/plain").await;
    w.client.data("mutation($id: ID!) { deleteFile(id: $id) }", json!({ "id": file["id"] })).await;
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    assert!(pyairtable_files::sweep(&w.harness.kit, later).await.expect("sweep") >= 3);
    let listed = reqwest::get(format!("{}/pyairtable-test?list-type=2", moto.endpoint))
        .await
        .expect("list")
        .text()
        .await
        .expect("xml");
    assert!(!listed.contains("<Key>"), "the bucket is empty: {listed}");
}

/// The tenant's used bytes (`Organization.fileStorage.usedBytes`).
async fn used_bytes(w: &World) -> i64 {
    let storage = "query($o: ID!) { _entities(representations: [{ __typename: \"Organization\", id: $o }]) {
        ... on Organization { fileStorage { usedBytes } } } }";
    let answer = w.client.data(storage, json!({ "o": w.org })).await;
    answer["_entities"][0]["fileStorage"]["usedBytes"].as_i64().expect("usedBytes")
}

#[tokio::test]
async fn more_bytes_than_declared_never_become_a_file_nor_count() {
    let moto = moto("pyairtable-test").await;
    let w = world(&moto).await;
    let upload = w.create_upload(&w.client, "a.txt", b"hello", "text/plain").await.expect("created");
    let url = upload["url"].as_str().expect("url");
    // The presigned PUT binds the declared length: S3 (and MinIO) refuse any other Content-Length.
    assert!(url.contains("X-Amz-SignedHeaders=content-length%3Bhost"), "Content-Length is signed: {url}");
    assert_eq!(used_bytes(&w).await, 5, "the declared size is reserved");

    let (status, _) = put(url, b"hello, and a good many bytes more".to_vec()).await;
    let id = json!({ "id": upload["file"]["id"] });
    if status < 300 {
        // moto does not check presigned signatures: completeUpload compares the staged size.
        let (_, body) = w.client.send(COMPLETE, id.clone()).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UPLOAD_INVALID", "{body}");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("5 bytes were declared, 33 arrived"), "{message}");
    } else {
        assert_eq!(status, 403, "a server that checks the signature refuses the PUT");
    }
    assert_eq!(w.client.data(READ, id.clone()).await["file"], serde_json::Value::Null, "not visible");
    assert_eq!(used_bytes(&w).await, 0, "nothing counts against the quota");
    let listed =
        reqwest::get(format!("{}/pyairtable-test?list-type=2&prefix=some/prefix/staging/", moto.endpoint))
            .await
            .expect("list")
            .text()
            .await
            .expect("xml");
    assert!(!listed.contains("<Key>"), "the staged bytes are dropped: {listed}");
}
