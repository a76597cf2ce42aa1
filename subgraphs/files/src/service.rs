//! Domain rules of the files subgraph. Who may do what is the permissions subgraph's policy
//! (workspace actions `read_files`, `upload_files`, `delete_own_files`, `delete_files`,
//! `manage_files`), asked through the kit's authorizer.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pyairtable_kit::authz::{Authorizer, Check, Decision, Resource};
use pyairtable_kit::config::FilesConfig;
use pyairtable_kit::db::{Scope, scoped};
use pyairtable_kit::events::publish;
use pyairtable_kit::{Error, Result};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::codes;
use crate::detect::{self, Detected, content_disposition};
use crate::storage::Storage;
use crate::store::{self, FileRow};
use crate::token::{Claims, Purpose, Signer};

/// The files service: database, object store, URL signing, limits.
#[derive(Clone)]
pub struct Files(Arc<Inner>);

struct Inner {
    db: PgPool,
    authorizer: Arc<dyn Authorizer>,
    storage: Storage,
    /// Made on first use from the key in the database (shared by every replica).
    signer: tokio::sync::OnceCell<Signer>,
    limits: FilesConfig,
    /// Where clients reach our own endpoints (`.../files/upload/...`).
    base_url: String,
}

/// A new upload: where to send the bytes.
pub struct Ticket {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl Files {
    pub fn new(
        db: PgPool,
        authorizer: Arc<dyn Authorizer>,
        storage: Storage,
        limits: FilesConfig,
        base_url: String,
    ) -> Self {
        let signer = tokio::sync::OnceCell::new();
        Self(Arc::new(Inner { db, authorizer, storage, signer, limits, base_url }))
    }

    pub fn db(&self) -> &PgPool {
        &self.0.db
    }

    pub fn authorizer(&self) -> &Arc<dyn Authorizer> {
        &self.0.authorizer
    }

    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }

    pub async fn signer(&self) -> Result<&Signer> {
        self.0
            .signer
            .get_or_try_init(|| async { Ok(Signer::new(store::signing_key(&self.0.db).await?)) })
            .await
    }

    pub fn limits(&self) -> &FilesConfig {
        &self.0.limits
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.0.limits.url_ttl_secs)
    }

    pub(crate) fn expires_at(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(i64::try_from(self.0.limits.url_ttl_secs).unwrap_or(900))
    }

    pub async fn require(&self, caller: Uuid, action: &str, resource: Resource) -> Result<()> {
        let check = Check::new(action, resource);
        let decision = self.0.authorizer.decide(caller, std::slice::from_ref(&check)).await?;
        decision.first().copied().unwrap_or(Decision::Hide).into_result(&check)
    }

    /// The organization of a workspace in one of the caller's organizations; NOT_FOUND otherwise.
    /// A workspace created a moment ago may not be known yet: pending events are applied first.
    pub async fn workspace(&self, caller: Uuid, workspace: Uuid) -> Result<Resource> {
        for attempt in 0..2 {
            let mine = self.0.authorizer.organizations_of(caller).await?;
            let mut tx = scoped(&self.0.db, &Scope::tenants(mine)).await?;
            let tenant = store::workspace_tenant(&mut tx, workspace).await?;
            tx.commit().await?;
            if let Some(organization_id) = tenant {
                return Ok(Resource::Workspace { id: workspace, organization_id });
            }
            if attempt == 0 {
                crate::events::consumer().catch_up(&self.0.db).await?;
            }
        }
        Err(Error::NotFound("no such workspace".into()))
    }

    /// A live file in one of the caller's organizations, with the transaction that found it.
    pub async fn locate(&self, caller: Uuid, id: Uuid) -> Result<(FileRow, Transaction<'static, Postgres>)> {
        let mine = self.0.authorizer.organizations_of(caller).await?;
        let mut tx = scoped(&self.0.db, &Scope::tenants(mine)).await?;
        let row = store::by_ids(&mut tx, &[id])
            .await?
            .pop()
            .filter(|row| row.deleted_at.is_none())
            .ok_or_else(|| Error::NotFound("no such file".into()))?;
        Ok((row, tx))
    }

    /// Starts an upload through a signed URL: checks the claim, reserves the bytes in the quota.
    #[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
    pub async fn create_upload(
        &self,
        caller: Uuid,
        workspace: Uuid,
        claim: Claim,
    ) -> Result<(FileRow, Ticket)> {
        let resource = self.workspace(caller, workspace).await?;
        self.require(caller, "upload_files", resource).await?;
        let tenant = resource.tenant().unwrap_or_default();
        self.check_declared(tenant, workspace, &claim.content_type).await?;
        let expires_at = self.expires_at();
        let row = self.reserve(caller, (tenant, workspace), &claim, "pending", expires_at).await?;
        let staging = self.0.storage.staging(tenant, row.id);
        let size = u64::try_from(row.size).unwrap_or_default();
        let url = match self.0.storage.presigned_put(&staging, self.ttl(), size).await {
            Ok(Some(url)) => url,
            Ok(None) => self.own_url(Purpose::Upload, &row, expires_at, "upload").await?,
            Err(err) => return Err(Error::internal(err)),
        };
        Ok((row, Ticket { url, expires_at }))
    }

    /// Refuses early a declared type the workspace's allow-list would refuse anyway.
    async fn check_declared(&self, tenant: Uuid, workspace: Uuid, declared: &str) -> Result<()> {
        if declared == detect::OCTET_STREAM {
            return Ok(());
        }
        let list = self.allow_list(tenant, workspace).await?;
        detect::allowed(list.as_deref(), &Detected { mime: declared.to_owned(), executable: false })
    }

    pub async fn allow_list(&self, tenant: Uuid, workspace: Uuid) -> Result<Option<Vec<String>>> {
        let mut tx = scoped(&self.0.db, &Scope::tenant(tenant)).await?;
        let list = store::allow_list(&mut tx, workspace).await?;
        tx.commit().await?;
        Ok(list)
    }

    /// Reserves the claimed bytes in the tenant's quota and records the file in `state`.
    pub(crate) async fn reserve(
        &self,
        caller: Uuid,
        (tenant, workspace): (Uuid, Uuid),
        claim: &Claim,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<FileRow> {
        let size = i64::try_from(claim.size).map_err(|_| too_large(self.0.limits.max_size))?;
        let quota = i64::try_from(self.0.limits.quota).unwrap_or(i64::MAX);
        let mut tx = scoped(&self.0.db, &Scope::tenant(tenant)).await?;
        if !store::reserve(&mut tx, tenant, size, quota).await? {
            return Err(Error::Refused {
                code: codes::QUOTA_EXCEEDED,
                message: "the organization's storage quota would be exceeded".into(),
            });
        }
        let new = store::NewFile {
            id: Uuid::now_v7(),
            tenant,
            workspace,
            owner: caller,
            name: &claim.name,
            declared_type: &claim.content_type,
            declared_sha256: claim.sha256.as_ref().map(|s| &s[..]),
            size,
            state,
            expires_at,
            staged: self.0.storage.is_s3() && state == "pending",
        };
        let row = store::insert(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// A URL of our own endpoint for `row`.
    async fn own_url(
        &self,
        purpose: Purpose,
        row: &FileRow,
        expires_at: DateTime<Utc>,
        path: &str,
    ) -> Result<String> {
        let claims = Claims { purpose, file: row.id, tenant: row.tenant_id, expires: expires_at.timestamp() };
        Ok(format!("{}/files/{path}/{}", self.0.base_url, self.signer().await?.sign(&claims)))
    }

    /// A short-lived URL that downloads the file (S3: presigned, with our headers).
    pub async fn download_url(&self, row: &FileRow) -> Result<String> {
        let content_type = row.content_type.as_deref().unwrap_or(detect::OCTET_STREAM);
        let path = self.0.storage.content(row.tenant_id, row.id);
        let disposition = content_disposition(&row.name);
        match self.0.storage.presigned_get(&path, self.ttl(), content_type, &disposition).await {
            Ok(Some(url)) => Ok(url),
            Ok(None) => self.own_url(Purpose::Download, row, self.expires_at(), "download").await,
            Err(err) => Err(Error::internal(err)),
        }
    }

    /// A short-lived URL of the file's thumbnail (a PNG).
    pub async fn thumbnail_url(&self, row: &FileRow) -> Result<String> {
        let path = self.0.storage.thumbnail(row.tenant_id, row.id);
        let disposition = content_disposition(&format!("{}.thumbnail.png", row.name));
        match self.0.storage.presigned_get(&path, self.ttl(), "image/png", &disposition).await {
            Ok(Some(url)) => Ok(url),
            Ok(None) => self.own_url(Purpose::Thumbnail, row, self.expires_at(), "thumbnail").await,
            Err(err) => Err(Error::internal(err)),
        }
    }

    /// Soft-deletes a file (its bytes leave the quota at once; the sweep removes the objects).
    #[tracing::instrument(skip_all, fields(file_id = %id))]
    pub async fn delete(&self, caller: Uuid, id: Uuid) -> Result<()> {
        let (row, mut tx) = self.locate(caller, id).await?;
        if !row.is_ready() {
            return Err(Error::NotFound("no such file".into()));
        }
        let action = if row.owner_id == caller { "delete_own_files" } else { "delete_files" };
        self.require(caller, action, resource(&row)).await?;
        if store::soft_delete(&mut tx, id).await?.is_none() {
            return Err(Error::NotFound("no such file".into()));
        }
        store::release(&mut tx, row.tenant_id, row.size).await?;
        publish(&mut tx, "file.deleted", &event(&row)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or with `None` removes) the content types a workspace accepts.
    pub async fn set_allow_list(
        &self,
        caller: Uuid,
        workspace: Uuid,
        types: Option<&[String]>,
    ) -> Result<Resource> {
        let resource = self.workspace(caller, workspace).await?;
        self.require(caller, "manage_files", resource).await?;
        let list = types.map(detect::parse_allow_list).transpose()?;
        let tenant = resource.tenant().unwrap_or_default();
        let mut tx = scoped(&self.0.db, &Scope::tenant(tenant)).await?;
        store::set_allow_list(&mut tx, tenant, workspace, list.as_deref()).await?;
        tx.commit().await?;
        Ok(resource)
    }

    /// A user's avatar, for a caller who may see that user's profile.
    pub async fn avatar(&self, caller: Uuid, user: Uuid, file: Uuid) -> Result<Option<FileRow>> {
        let check = Check::new("read", Resource::User { id: user });
        let decision = self.0.authorizer.decide(caller, std::slice::from_ref(&check)).await?;
        if !decision.first().is_some_and(|d| d.allowed()) {
            return Ok(None);
        }
        store::avatar(&self.0.db, user, file).await
    }
}

/// What a client says about a file before sending it (checked, never trusted).
pub struct Claim {
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: Option<[u8; 32]>,
}

impl Claim {
    /// Validates the client's claim against the limits.
    pub fn parse(name: &str, size: i64, content_type: &str, sha256: Option<&str>, max: u64) -> Result<Self> {
        let name = detect::parse_name(name)?;
        let size = u64::try_from(size).map_err(|_| Error::bad_input("size", "size is a number of bytes"))?;
        if size > max {
            return Err(too_large(max));
        }
        let content_type = detect::parse_content_type("contentType", content_type)?;
        let sha256 = sha256.map(parse_sha256).transpose()?;
        Ok(Self { name, size, content_type, sha256 })
    }
}

fn parse_sha256(hex: &str) -> Result<[u8; 32]> {
    let bad = || Error::bad_input("sha256", "sha256 is 64 hexadecimal digits");
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

pub fn too_large(max: u64) -> Error {
    Error::Refused { code: codes::FILE_TOO_LARGE, message: format!("files are limited to {max} bytes") }
}

/// The authorization resource of a file: its workspace.
pub fn resource(row: &FileRow) -> Resource {
    Resource::Workspace { id: row.workspace_id, organization_id: row.tenant_id }
}

/// The payload of `file.uploaded` and `file.deleted`.
pub fn event(row: &FileRow) -> serde_json::Value {
    serde_json::json!({
        "file_id": row.id, "organization_id": row.tenant_id, "workspace_id": row.workspace_id,
        "owner_id": row.owner_id, "name": row.name, "size": row.size, "content_type": row.content_type,
    })
}
