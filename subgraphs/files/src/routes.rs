//! The files service's own HTTP endpoints, reached through signed URLs only (no session): the
//! local store's upload (`PUT /files/upload/{token}`) and downloads of files and thumbnails.
//! Served by the files service, and by the router in one process.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use futures::TryStreamExt;
use pyairtable_kit::Error;
use pyairtable_kit::db::{Scope, scoped};

use crate::codes;
use crate::detect::content_disposition;
use crate::service::Files;
use crate::store;
use crate::token::{Claims, Purpose, TokenError};

pub fn routes(files: Files) -> Router {
    Router::new()
        .route("/files/upload/{token}", put(upload))
        .route("/files/download/{token}", get(download))
        .route("/files/thumbnail/{token}", get(thumbnail))
        .with_state(files)
}

async fn upload(
    State(files): State<Files>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let claims = match verify(&files, &token, Purpose::Upload).await {
        Ok(claims) => claims,
        Err(refused) => return refused,
    };
    let length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    match files.receive(&claims, body.into_data_stream(), length).await {
        Ok(received) => {
            let sha256: String = received.sha256.iter().map(|b| format!("{b:02x}")).collect();
            let body = serde_json::json!({ "size": received.size, "sha256": sha256, "contentType": received.detected.mime });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(err) => error(&err),
    }
}

async fn download(State(files): State<Files>, Path(token): Path<String>) -> Response {
    serve(&files, &token, Purpose::Download).await
}

async fn thumbnail(State(files): State<Files>, Path(token): Path<String>) -> Response {
    serve(&files, &token, Purpose::Thumbnail).await
}

/// Streams a live file (or its thumbnail) with headers that keep browsers from running it.
async fn serve(files: &Files, token: &str, purpose: Purpose) -> Response {
    let claims = match verify(files, token, purpose).await {
        Ok(claims) => claims,
        Err(refused) => return refused,
    };
    let row = async {
        let mut tx = scoped(files.db(), &Scope::tenant(claims.tenant)).await?;
        let row = store::by_ids(&mut tx, &[claims.file]).await?.pop();
        tx.commit().await?;
        row.filter(store::FileRow::is_ready).ok_or_else(|| Error::NotFound("no such file".into()))
    };
    let row = match row.await {
        Ok(row) => row,
        Err(err) => return error(&err),
    };
    let (path, content_type, name) = match purpose {
        Purpose::Thumbnail => (
            files.storage().thumbnail(row.tenant_id, row.id),
            "image/png".to_owned(),
            format!("{}.thumbnail.png", row.name),
        ),
        _ => (
            files.storage().content(row.tenant_id, row.id),
            row.content_type.clone().unwrap_or_default(),
            row.name.clone(),
        ),
    };
    let (size, stream) = match files.storage().read(&path).await {
        Ok(found) => found,
        Err(object_store::Error::NotFound { .. }) => return error(&Error::NotFound("no such file".into())),
        Err(err) => return error(&Error::internal(err)),
    };
    let mut response = Body::from_stream(stream.map_err(axum::Error::new)).into_response();
    let headers = response.headers_mut();
    let value = |v: &str| {
        HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(&content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(header::CONTENT_DISPOSITION, value(&content_disposition(&name)));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

async fn verify(files: &Files, token: &str, purpose: Purpose) -> Result<Claims, Response> {
    let signer = files.signer().await.map_err(|e| error(&e))?;
    signer.verify(token, purpose, chrono::Utc::now().timestamp()).map_err(|err| {
        let (code, message) = match err {
            TokenError::Invalid => (codes::INVALID_SIGNATURE, "this URL is not valid"),
            TokenError::Expired => (codes::URL_EXPIRED, "this URL has expired; ask for a new one"),
        };
        reply(StatusCode::FORBIDDEN, code, message)
    })
}

/// An error as JSON `{"error": {"code", "message"}}` with the matching status.
fn error(err: &Error) -> Response {
    let status = match err.code() {
        codes::FILE_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        codes::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        codes::QUOTA_EXCEEDED => StatusCode::INSUFFICIENT_STORAGE,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "CONFLICT" => StatusCode::CONFLICT,
        "INTERNAL_SERVER_ERROR" => {
            tracing::error!(%err, "serving a files endpoint");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    if let Error::Internal(cause) = err {
        tracing::error!(error = format!("{cause:#}"), "internal error");
    }
    reply(status, err.code(), &err.to_string())
}

fn reply(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": { "code": code, "message": message } }))).into_response()
}
