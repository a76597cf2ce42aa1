//! Taking bytes in: the local store's signed PUT, completeUpload (checks, and on S3 the move
//! from the staging key), and GraphQL multipart uploads. Every path streams the bytes once while
//! counting, hashing and detecting their type; a file becomes visible only when all agree.

use bytes::Bytes;
use futures::Stream;
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::events::publish;
use pyairtable_kit::{Error, Result};
use uuid::Uuid;

use crate::codes;
use crate::detect::{self, Detected};
use crate::service::{Claim, Files, event, resource, too_large};
use crate::storage::{IngestError, Ingested};
use crate::store::{self, FileRow};
use crate::token::Claims;

/// Types the thumbnail worker decodes.
const THUMBNAILED: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

impl Files {
    /// completeUpload: the file becomes visible once its size, checksum and type check out.
    #[tracing::instrument(skip_all, fields(file_id = %id))]
    pub async fn complete(&self, caller: Uuid, id: Uuid) -> Result<FileRow> {
        let (row, tx) = self.locate(caller, id).await?;
        tx.commit().await?;
        if row.owner_id != caller {
            return Err(Error::NotFound("no such upload".into()));
        }
        self.require(caller, "upload_files", resource(&row)).await?;
        if row.state == "ready" {
            return Ok(row);
        }
        let from = if self.storage().is_s3() { "pending" } else { "received" };
        let mut tx = scoped(self.db(), &Scope::tenant(row.tenant_id)).await?;
        let claimed = store::transition(&mut tx, id, &[from], "verifying").await?;
        tx.commit().await?;
        let Some(row) = claimed else { return Err(not_ready(&row.state)) };
        if self.storage().is_s3() {
            return self.complete_staged(row).await;
        }
        let ingested = Ingested {
            size: u64::try_from(row.size).unwrap_or_default(),
            sha256: row.sha256.as_deref().and_then(|s| s.try_into().ok()).unwrap_or_default(),
            detected: Detected { mime: row.content_type.clone().unwrap_or_default(), executable: false },
        };
        self.settle(row, Ok(ingested)).await
    }

    /// S3: streams the staging object into the file's own key (the client cannot write there),
    /// checking it on the way, then drops the staging object.
    async fn complete_staged(&self, row: FileRow) -> Result<FileRow> {
        let staging = self.storage().staging(row.tenant_id, row.id);
        let (size, stream) = match self.storage().read(&staging).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => {
                self.set_state(&row, "pending").await?;
                return Err(invalid("the bytes have not been uploaded yet"));
            }
            Err(err) => return Err(Error::internal(err)),
        };
        let result = if size != row.size as u64 {
            Err(IngestError::Refused(size_mismatch(row.size, size)))
        } else {
            self.ingest(&row, stream).await
        };
        let settled = self.settle(row.clone(), result).await;
        if let Err(err) = self.storage().delete(&staging).await {
            tracing::warn!(%err, "dropping a staging object (the sweep will)");
        }
        settled
    }

    /// The signed PUT of the local store: streams the body into the file's key.
    #[tracing::instrument(skip_all, fields(file_id = %claims.file))]
    pub async fn receive<S, E>(&self, claims: &Claims, body: S, length: Option<u64>) -> Result<Ingested>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut tx = scoped(self.db(), &Scope::tenant(claims.tenant)).await?;
        let row = store::by_ids(&mut tx, &[claims.file]).await?.pop().filter(|r| r.deleted_at.is_none());
        let row = row.ok_or_else(|| Error::NotFound("no such upload".into()))?;
        if length.is_some_and(|l| l > row.size as u64) {
            return Err(too_large(row.size as u64));
        }
        let Some(row) = store::transition(&mut tx, row.id, &["pending"], "receiving").await? else {
            return Err(Error::Conflict(format!("this upload is {}", describe(&row.state))));
        };
        tx.commit().await?;
        match self.ingest(&row, body).await {
            Ok(ingested) if ingested.size != row.size as u64 => {
                self.set_state(&row, "pending").await?;
                self.storage()
                    .delete(&self.storage().content(row.tenant_id, row.id))
                    .await
                    .map_err(Error::internal)?;
                Err(size_mismatch(row.size, ingested.size))
            }
            Ok(ingested) => {
                let facts = (row.size, &ingested.sha256[..], ingested.detected.mime.as_str());
                let mut tx = scoped(self.db(), &Scope::tenant(row.tenant_id)).await?;
                store::record(&mut tx, row.id, "received", facts).await?;
                tx.commit().await?;
                Ok(ingested)
            }
            Err(IngestError::Body(why)) => {
                self.set_state(&row, "pending").await?;
                Err(Error::bad_input("file", format!("the upload broke off ({why}); send it again")))
            }
            Err(err) => {
                self.void(&row).await?;
                Err(err.into())
            }
        }
    }

    /// A GraphQL multipart upload (spooled to a temporary file by the multipart parser).
    #[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
    pub async fn upload_spooled(
        &self,
        caller: Uuid,
        workspace: Uuid,
        upload: async_graphql::UploadValue,
    ) -> Result<FileRow> {
        let size = upload.content.metadata().map_err(Error::internal)?.len();
        let max = self.limits().multipart_max_size;
        if size > max {
            return Err(too_large(max));
        }
        let declared = upload.content_type.as_deref().unwrap_or(detect::OCTET_STREAM);
        let claim = Claim::parse(&upload.filename, size as i64, declared, None, max)?;
        let resource = self.workspace(caller, workspace).await?;
        self.require(caller, "upload_files", resource).await?;
        let tenant = resource.tenant().unwrap_or_default();
        let row = self.reserve(caller, (tenant, workspace), &claim, "verifying", self.expires_at()).await?;
        let file = tokio::fs::File::from_std(upload.content);
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let result = self.ingest(&row, stream).await;
        self.settle(row, result).await
    }

    /// Streams `body` into the file's key with the checks its workspace asks for.
    async fn ingest<S, E>(&self, row: &FileRow, body: S) -> std::result::Result<Ingested, IngestError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let list = self.allow_list(row.tenant_id, row.workspace_id).await.map_err(IngestError::Refused)?;
        let declared = row.declared_type.clone();
        let check = move |detected: &Detected| {
            detect::reconcile(&declared, detected)?;
            detect::allowed(list.as_deref(), detected)
        };
        let path = self.storage().content(row.tenant_id, row.id);
        self.storage().ingest(&path, body, (row.size as u64, &row.name), check).await
    }

    /// Makes a verified file visible, or voids the upload and says why.
    async fn settle(
        &self,
        row: FileRow,
        result: std::result::Result<Ingested, IngestError>,
    ) -> Result<FileRow> {
        let checked =
            result.map_err(Error::from).and_then(|ingested| verify(&row, &ingested).map(|()| ingested));
        let ingested = match checked {
            Ok(ingested) => ingested,
            Err(err) => {
                self.void(&row).await?;
                return Err(err);
            }
        };
        let mime = ingested.detected.mime.as_str();
        let mut tx = scoped(self.db(), &Scope::tenant(row.tenant_id)).await?;
        let ready = store::record(&mut tx, row.id, "ready", (row.size, &ingested.sha256[..], mime))
            .await?
            .ok_or_else(|| Error::NotFound("the upload was deleted".into()))?;
        if THUMBNAILED.contains(&mime) {
            store::enqueue_thumbnail(&mut tx, row.id, row.tenant_id).await?;
        }
        publish(&mut tx, "file.uploaded", &event(&ready)).await?;
        tx.commit().await?;
        Ok(ready)
    }

    /// Gives up an upload: it leaves the quota now, its objects go with the next sweep.
    async fn void(&self, row: &FileRow) -> Result<()> {
        let mut tx = scoped(self.db(), &Scope::tenant(row.tenant_id)).await?;
        if store::soft_delete(&mut tx, row.id).await?.is_some() {
            store::release(&mut tx, row.tenant_id, row.size).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_state(&self, row: &FileRow, state: &str) -> Result<()> {
        let mut tx = scoped(self.db(), &Scope::tenant(row.tenant_id)).await?;
        store::transition(&mut tx, row.id, &["receiving", "verifying"], state).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Size and checksum against what was declared.
fn verify(row: &FileRow, ingested: &Ingested) -> Result<()> {
    if ingested.size != row.size as u64 {
        return Err(size_mismatch(row.size, ingested.size));
    }
    if row.declared_sha256.as_deref().is_some_and(|declared| declared != ingested.sha256) {
        return Err(invalid("the bytes do not match the declared SHA-256"));
    }
    Ok(())
}

fn size_mismatch(declared: i64, got: u64) -> Error {
    invalid(&format!("{declared} bytes were declared, {got} arrived"))
}

fn invalid(message: &str) -> Error {
    Error::Refused { code: codes::UPLOAD_INVALID, message: message.to_owned() }
}

fn not_ready(state: &str) -> Error {
    invalid(&format!("this upload is {}", describe(state)))
}

fn describe(state: &str) -> &'static str {
    match state {
        "pending" => "still waiting for its bytes",
        "receiving" => "receiving its bytes right now",
        "received" => "uploaded and waiting for completeUpload",
        "verifying" => "being verified",
        _ => "complete",
    }
}
