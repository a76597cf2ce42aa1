//! The files subgraph as its own service, on the local store: uploads through signed URLs and
//! multipart requests, checks against the bytes, quotas, signed downloads, thumbnails, deletion
//! and the sweep, and every refusal with its code.

mod common;

use common::{COMPLETE, CREATE_UPLOAD, ELF, READ, World, get, multipart, png, put, sha256, with_thumbnail};
use pyairtable_kit::Caller;
use pyairtable_kit::identity::IDENTITY_HEADER;
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn a_file_goes_up_through_a_signed_url_and_comes_down_through_another() {
    let w = World::start(&[]).await;
    let bytes = png(640, 480);
    let name = "résumé \"final\"; v2.png";
    let file = w.upload(name, &bytes, "image/png").await;
    assert_eq!(file["contentType"], "image/png");
    assert_eq!(file["sha256"], sha256(&bytes));
    assert_eq!((file["size"].as_u64(), &file["ready"]), (Some(bytes.len() as u64), &json!(true)));

    let read = with_thumbnail(&w.client, &file["id"]).await;
    assert_eq!((&read["owner"]["id"], &read["workspace"]["id"]), (&json!(w.owner), &json!(w.ws)));
    let (status, headers, body) = get(&w.reach(read["downloadUrl"].as_str().expect("url"))).await;
    assert_eq!((status, body == bytes), (200, true));
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(
        disposition.starts_with(
            "attachment; filename=\"r_sum_ _final__ v2.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9"
        ),
        "{disposition}"
    );

    assert_eq!(
        (read["thumbnail"]["width"].as_i64(), read["thumbnail"]["height"].as_i64()),
        (Some(256), Some(192))
    );
    let (status, headers, thumb) = get(&w.reach(read["thumbnail"]["url"].as_str().expect("url"))).await;
    assert_eq!(
        (status, &headers["content-type"]),
        (200, &"image/png".parse::<reqwest::header::HeaderValue>().expect("value"))
    );
    assert!(thumb.starts_with(b"\x89PNG"));

    let list = "query($w: ID!) { _entities(representations: [{ __typename: \"Workspace\", id: $w }]) {
        ... on Workspace { files(first: 10) { totalCount edges { node { name } } } } } }";
    let listed = w.client.data(list, json!({ "w": w.ws })).await;
    assert_eq!(
        listed["_entities"][0]["files"],
        json!({ "totalCount": 1, "edges": [{ "node": { "name": name } }] })
    );
    let storage = "query($o: ID!) { _entities(representations: [{ __typename: \"Organization\", id: $o }]) {
        ... on Organization { fileStorage { usedBytes quotaBytes } } } }";
    let used =
        w.client.data(storage, json!({ "o": w.org })).await["_entities"][0]["fileStorage"]["usedBytes"]
            .clone();
    assert_eq!(used.as_u64(), Some(bytes.len() as u64));
}

#[tokio::test]
async fn bad_files_are_refused_with_a_clear_code() {
    let w =
        World::start(&[("PYAIRTABLE_FILES_MAX_SIZE", "64KiB"), ("PYAIRTABLE_FILES_QUOTA", "100KiB")]).await;
    let c = &w.client;
    // Larger than the limit: refused when declared, and when more bytes arrive than declared.
    assert_eq!(
        w.create_upload(c, "big.bin", &vec![0; 64 * 1024 + 1], "application/octet-stream").await,
        Err("FILE_TOO_LARGE".into())
    );
    let small = w.create_upload(c, "small.bin", &[1; 10], "application/octet-stream").await.expect("created");
    let (status, body) = put(&w.reach(small["url"].as_str().expect("url")), vec![1; 5000]).await;
    assert_eq!((status, &body["error"]["code"]), (413, &json!("FILE_TOO_LARGE")), "{body}");

    // An executable renamed .png: the bytes say what it is.
    let exe = w.create_upload(c, "cat.png", ELF, "image/png").await.expect("created");
    let (status, body) = put(&w.reach(exe["url"].as_str().expect("url")), ELF.to_vec()).await;
    assert_eq!((status, &body["error"]["code"]), (415, &json!("UNSUPPORTED_MEDIA_TYPE")), "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("application/x-executable"),
        "{body}"
    );
    assert_eq!(
        c.error_code(COMPLETE, json!({ "id": exe["file"]["id"] })).await,
        "NOT_FOUND",
        "the upload is void"
    );
    // ... and declared as anything, a program is still refused by default.
    let exe = w.create_upload(c, "cat.png", ELF, "application/octet-stream").await.expect("created");
    assert_eq!(put(&w.reach(exe["url"].as_str().expect("url")), ELF.to_vec()).await.0, 415);

    // Names are names, not paths.
    for bad in ["../../etc/passwd", "..", "a/b.txt", "c:\\windows\\x", "nul\u{0}.txt", ""] {
        assert_eq!(
            w.create_upload(c, bad, b"x", "text/plain").await,
            Err("BAD_USER_INPUT".into()),
            "{bad:?}"
        );
    }
    // Nonsense inputs.
    let vars = json!({ "w": w.ws, "n": "a.txt", "s": -1, "t": "text/plain", "h": null });
    assert_eq!(c.error_code(CREATE_UPLOAD, vars).await, "BAD_USER_INPUT");
    let vars = json!({ "w": w.ws, "n": "a.txt", "s": 1, "t": "not a type", "h": null });
    assert_eq!(c.error_code(CREATE_UPLOAD, vars).await, "BAD_USER_INPUT");
    let vars = json!({ "w": w.ws, "n": "a.txt", "s": 1, "t": "text/plain", "h": "abc" });
    assert_eq!(c.error_code(CREATE_UPLOAD, vars).await, "BAD_USER_INPUT");
    let vars = json!({ "w": "nope", "n": "a.txt", "s": 1, "t": "text/plain", "h": null });
    assert_eq!(c.error_code(CREATE_UPLOAD, vars).await, "BAD_USER_INPUT");

    // Completing before the bytes are in, or with other bytes than the declared checksum.
    let early = w.create_upload(c, "early.txt", b"hello", "text/plain").await.expect("created");
    assert_eq!(c.error_code(COMPLETE, json!({ "id": early["file"]["id"] })).await, "UPLOAD_INVALID");
    let vars = json!({ "w": w.ws, "n": "sum.txt", "s": 5, "t": "text/plain", "h": sha256(b"other") });
    let summed = c.data(CREATE_UPLOAD, vars).await["createUpload"].clone();
    assert_eq!(put(&w.reach(summed["url"].as_str().expect("url")), b"hello".to_vec()).await.0, 200);
    assert_eq!(c.error_code(COMPLETE, json!({ "id": summed["file"]["id"] })).await, "UPLOAD_INVALID");
    // Fewer bytes than declared: the upload waits for a full retry.
    let (status, body) = put(&w.reach(early["url"].as_str().expect("url")), b"hel".to_vec()).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("UPLOAD_INVALID")), "{body}");
    assert_eq!(put(&w.reach(early["url"].as_str().expect("url")), b"hello".to_vec()).await.0, 200);
    assert_eq!(
        put(&w.reach(early["url"].as_str().expect("url")), b"hello".to_vec()).await.0,
        409,
        "once only"
    );
    assert_eq!(
        c.data(COMPLETE, json!({ "id": early["file"]["id"] })).await["completeUpload"]["contentType"],
        "text/plain"
    );

    // The quota counts uploads in progress; refused uploads give their bytes back.
    w.upload("a.bin", &vec![7; 60 * 1024], "application/octet-stream").await;
    assert_eq!(
        w.create_upload(c, "b.bin", &vec![7; 50 * 1024], "application/octet-stream").await,
        Err("QUOTA_EXCEEDED".into())
    );
}

#[tokio::test]
async fn a_workspace_allow_list_decides_the_types_it_takes() {
    let w = World::start(&[]).await;
    let set = "mutation($w: ID!, $t: [String!]) { setAllowedFileTypes(workspaceId: $w, contentTypes: $t) { allowedFileTypes } }";
    let set_to = w.client.data(set, json!({ "w": w.ws, "t": ["Image/*", "application/pdf"] })).await;
    assert_eq!(set_to["setAllowedFileTypes"]["allowedFileTypes"], json!(["image/*", "application/pdf"]));
    assert_eq!(w.client.error_code(set, json!({ "w": w.ws, "t": ["what"] })).await, "BAD_USER_INPUT");
    assert_eq!(
        w.create_upload(&w.client, "notes.txt", b"hi", "text/plain").await,
        Err("UNSUPPORTED_MEDIA_TYPE".into())
    );
    // Claimed as unknown, the bytes still decide.
    let text =
        w.create_upload(&w.client, "notes.bin", b"hi", "application/octet-stream").await.expect("created");
    assert_eq!(put(&w.reach(text["url"].as_str().expect("url")), b"hi".to_vec()).await.0, 415);
    assert_eq!(w.upload("pic.png", &png(4, 4), "image/png").await["contentType"], "image/png");
    let reset = w.client.data(set, json!({ "w": w.ws, "t": null })).await;
    assert_eq!(reset["setAllowedFileTypes"]["allowedFileTypes"], Value::Null);
}

#[tokio::test]
async fn signed_urls_expire_and_cannot_be_altered() {
    let w = World::start(&[("PYAIRTABLE_FILES_URL_TTL_SECONDS", "2")]).await;
    let file = w.upload("a.txt", b"some text", "text/plain").await;
    let url = w.client.data(READ, json!({ "id": file["id"] })).await["file"]["downloadUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    let url = w.reach(&url);
    assert_eq!(get(&url).await.0, 200);

    let (path, token) = url.rsplit_once('/').expect("a token");
    let (claims, tag) = token.split_once('.').expect("two parts");
    let mut altered = claims.to_owned().into_bytes();
    altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
    let altered = format!("{path}/{}.{tag}", String::from_utf8(altered).expect("ascii"));
    for bad in [
        altered,
        format!("{path}/{claims}.AAAA"),
        format!("{path}/garbage"),
        url.replace("/download/", "/thumbnail/"),
    ] {
        let (status, _, body) = get(&bad).await;
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!((status, &body["error"]["code"]), (403, &json!("INVALID_SIGNATURE")), "{bad}");
    }
    let upload = w.create_upload(&w.client, "late.txt", b"late", "text/plain").await.expect("created");
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, _, body) = get(&url).await;
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((status, &body["error"]["code"]), (403, &json!("URL_EXPIRED")));
    let (status, body) = put(&w.reach(upload["url"].as_str().expect("url")), b"late".to_vec()).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("URL_EXPIRED")));
}

#[tokio::test]
async fn files_of_another_organization_stay_out_of_reach() {
    let w = World::start(&[]).await;
    let file = w.upload("secret.txt", b"the plans", "text/plain").await;
    let eve = Uuid::now_v7();
    let eve_org = common::organization(&w.harness, eve).await;
    common::workspace(&w.harness, eve_org, eve).await;
    let eve = w.harness.client(&Caller::user(eve));
    assert_eq!(eve.data(READ, json!({ "id": file["id"] })).await["file"], Value::Null);
    assert_eq!(
        eve.error_code("mutation($id: ID!) { deleteFile(id: $id) }", json!({ "id": file["id"] })).await,
        "NOT_FOUND"
    );
    assert_eq!(eve.error_code(COMPLETE, json!({ "id": file["id"] })).await, "NOT_FOUND");
    assert_eq!(w.create_upload(&eve, "x.txt", b"x", "text/plain").await, Err("NOT_FOUND".into()));
    let list = "query($w: ID!) { _entities(representations: [{ __typename: \"Workspace\", id: $w }]) { ... on Workspace { files { totalCount } } } }";
    assert_eq!(eve.error_code(list, json!({ "w": w.ws })).await, "NOT_FOUND");
    let entity = "query($id: ID!) { _entities(representations: [{ __typename: \"File\", id: $id }]) { ... on File { name } } }";
    assert_eq!(eve.data(entity, json!({ "id": file["id"] })).await["_entities"][0], Value::Null);
    // A member of the organization without a role on the workspace sees nothing of it either.
    let bob = Uuid::now_v7();
    let joined = json!({ "organization_id": w.org, "user_id": bob, "role": "member" });
    w.harness.publish("invitation.accepted", joined).await;
    let bob = w.harness.client(&Caller::user(bob));
    assert_eq!(bob.data(READ, json!({ "id": file["id"] })).await["file"], Value::Null);
    assert_eq!(w.create_upload(&bob, "x.txt", b"x", "text/plain").await, Err("NOT_FOUND".into()));
}

#[tokio::test]
async fn deleted_files_and_abandoned_uploads_are_swept() {
    let w = World::start(&[]).await;
    let file = w.upload("gone.txt", b"soon gone", "text/plain").await;
    let url = w.reach(
        w.client.data(READ, json!({ "id": file["id"] })).await["file"]["downloadUrl"].as_str().expect("url"),
    );
    let object = w.store_dir().join(format!("tenants/{}/files/{}", w.org, file["id"].as_str().expect("id")));
    assert!(object.exists(), "{}", object.display());
    let delete = "mutation($id: ID!) { deleteFile(id: $id) }";
    assert_eq!(w.client.data(delete, json!({ "id": file["id"] })).await["deleteFile"], true);
    assert_eq!(w.client.data(READ, json!({ "id": file["id"] })).await["file"], Value::Null);
    assert_eq!(get(&url).await.0, 404, "a URL handed out before the deletion stops working");
    assert_eq!(w.client.error_code(delete, json!({ "id": file["id"] })).await, "NOT_FOUND");

    let abandoned = w.create_upload(&w.client, "never.txt", b"never", "text/plain").await.expect("created");
    let half = w.create_upload(&w.client, "half.txt", b"half!", "text/plain").await.expect("created");
    assert_eq!(put(&w.reach(half["url"].as_str().expect("url")), b"half!".to_vec()).await.0, 200);
    let storage = "query($o: ID!) { _entities(representations: [{ __typename: \"Organization\", id: $o }]) { ... on Organization { fileStorage { usedBytes } } } }";
    let used = |v: Value| v["_entities"][0]["fileStorage"]["usedBytes"].as_i64();
    assert_eq!(
        used(w.client.data(storage, json!({ "o": w.org })).await),
        Some(10),
        "two uploads in progress"
    );

    let now = chrono::Utc::now();
    assert_eq!(
        pyairtable_files::sweep(&w.harness.kit, now).await.expect("sweep"),
        1,
        "only the deleted file is due now"
    );
    assert!(!object.exists(), "the deleted file's object is gone");
    let later = now + chrono::Duration::seconds(900 + 601);
    assert_eq!(pyairtable_files::sweep(&w.harness.kit, later).await.expect("sweep"), 2);
    let half_object =
        w.store_dir().join(format!("tenants/{}/files/{}", w.org, half["file"]["id"].as_str().expect("id")));
    assert!(!half_object.exists(), "the never-completed upload's bytes are gone");
    assert_eq!(used(w.client.data(storage, json!({ "o": w.org })).await), Some(0));
    assert_eq!(w.client.error_code(COMPLETE, json!({ "id": abandoned["file"]["id"] })).await, "NOT_FOUND");
}

#[tokio::test]
async fn small_files_go_up_in_a_multipart_request_with_a_preflight_header() {
    let w = World::start(&[("PYAIRTABLE_FILES_MULTIPART_MAX_SIZE", "16KiB")]).await;
    let identity = w.harness.key.sign(&Caller::user(w.owner), chrono::Utc::now().timestamp());
    let send = |form: reqwest::multipart::Form, preflight: bool| {
        let mut request = reqwest::Client::new()
            .post(w.harness.server.graphql_url())
            .header(IDENTITY_HEADER, &identity)
            .multipart(form);
        if preflight {
            request = request.header("apollo-require-preflight", "true");
        }
        async move {
            let response = request.send().await.expect("answers");
            (response.status().as_u16(), response.json::<Value>().await.expect("json"))
        }
    };
    let bytes = png(8, 8);
    let (status, body) = send(multipart(w.ws, "dot.png", "image/png", bytes.clone()), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["uploadFile"]["sha256"], sha256(&bytes));
    assert_eq!(body["data"]["uploadFile"]["contentType"], "image/png");

    let (status, body) = send(multipart(w.ws, "dot.png", "image/png", bytes.clone()), false).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (400, &json!("CSRF_PREVENTED")));
    let (status, body) =
        send(multipart(w.ws, "big.bin", "application/octet-stream", vec![0; 17 * 1024]), true).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (413, &json!("FILE_TOO_LARGE")));
    let (_, body) = send(multipart(w.ws, "cat.png", "image/png", ELF.to_vec()), true).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNSUPPORTED_MEDIA_TYPE", "{body}");
    let (_, body) = send(multipart(w.ws, "../../etc/passwd", "text/plain", b"root".to_vec()), true).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    let query = reqwest::multipart::Form::new()
        .text("operations", json!({ "query": "{ _service { sdl } }" }).to_string())
        .text("map", "{}");
    assert_eq!(send(query, true).await.0, 400, "multipart carries mutations only");
    let garbage = reqwest::multipart::Form::new().text("map", "not json");
    assert_eq!(send(garbage, true).await.0, 400);
}

#[tokio::test]
async fn an_avatar_is_shown_to_whoever_sees_the_profile_and_only_if_its_owner_uploaded_it() {
    let w = World::start(&[]).await;
    let picture = w.upload("me.png", &png(32, 32), "image/png").await;
    let text = w.upload("notes.txt", b"not a picture", "text/plain").await;
    let colleague = Uuid::now_v7();
    w.harness
        .publish(
            "invitation.accepted",
            json!({ "organization_id": w.org, "user_id": colleague, "role": "guest" }),
        )
        .await;
    let avatar = "query($u: ID!, $f: ID) { _entities(representations: [{ __typename: \"User\", id: $u, avatarFileId: $f }]) {
        ... on User { avatar { id contentType downloadUrl } } } }";
    let colleague = w.harness.client(&Caller::user(colleague));
    let seen =
        colleague.data(avatar, json!({ "u": w.owner, "f": picture["id"] })).await["_entities"][0]["avatar"]
            .clone();
    assert_eq!(seen["id"], picture["id"], "a guest without a workspace role sees the avatar");
    assert_eq!(get(&w.reach(seen["downloadUrl"].as_str().expect("url"))).await.0, 200);
    assert_eq!(
        colleague.data(avatar, json!({ "u": w.owner, "f": text["id"] })).await["_entities"][0]["avatar"],
        Value::Null,
        "not an image"
    );
    let stranger = w.harness.client(&Caller::user(Uuid::now_v7()));
    assert_eq!(
        stranger.data(avatar, json!({ "u": w.owner, "f": picture["id"] })).await["_entities"][0]["avatar"],
        Value::Null
    );
    // Someone naming another person's file as their own avatar gets nothing.
    let impostor = Uuid::now_v7();
    w.harness
        .publish(
            "invitation.accepted",
            json!({ "organization_id": w.org, "user_id": impostor, "role": "guest" }),
        )
        .await;
    let claimed = colleague.data(avatar, json!({ "u": impostor, "f": picture["id"] })).await;
    assert_eq!(claimed["_entities"][0]["avatar"], Value::Null);
}
