//! GraphQL of the files subgraph: `File` (an entity), uploads, and the fields it contributes to
//! `Workspace` (files, allowed types), `Organization` (storage) and `User` (avatar).

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, EmptySubscription, ID, InputValueError, InputValueResult, Object, Result, Scalar, ScalarType,
    Schema, SchemaBuilder, SimpleObject, Upload, Value,
};
use chrono::{DateTime, Utc};
use pyairtable_kit::authz::{self, Resource};
use pyairtable_kit::connection::{PageArgs, PageConnection, connection, wants_total};
use pyairtable_kit::identity::caller;
use pyairtable_kit::input::parse_id;
use uuid::Uuid;

use crate::loaders::{CountLoader, PageLoader, TenantLoader};
use crate::service::{Claim, Files, resource};
use crate::store::{self, FileRow};

pub type FilesSchema = Schema<Query, Mutation, EmptySubscription>;

pub(crate) fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

/// A whole number that may not fit in 32 bits (byte counts), as a JSON number (exact up to 2^53).
#[derive(Clone, Copy, Debug)]
pub struct BigInt(pub i64);

#[Scalar]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => {
                n.as_i64().map(BigInt).ok_or_else(|| InputValueError::custom("not a whole number"))
            }
            Value::String(s) => {
                s.parse().map(BigInt).map_err(|_| InputValueError::custom("not a whole number"))
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// A file in a workspace. Its content type comes from its bytes, never from the client.
pub struct File(pub FileRow);

#[Object]
impl File {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The name it was uploaded with (never a path).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Bytes.
    async fn size(&self) -> BigInt {
        BigInt(self.0.size)
    }
    /// Detected from the bytes (`application/octet-stream` when unknown).
    async fn content_type(&self) -> &str {
        self.0.content_type.as_deref().unwrap_or(crate::detect::OCTET_STREAM)
    }
    /// SHA-256 of the bytes, hexadecimal (null until the upload is complete).
    async fn sha256(&self) -> Option<String> {
        self.0.sha256.as_ref().map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
    /// Whether the upload is complete (only the uploader sees an incomplete one).
    async fn ready(&self) -> bool {
        self.0.is_ready()
    }
    /// Who uploaded it.
    async fn owner(&self) -> User {
        User { id: self.0.owner_id, avatar_file_id: None }
    }
    async fn organization(&self) -> Organization {
        Organization { id: self.0.tenant_id }
    }
    async fn workspace(&self) -> Workspace {
        Workspace { id: self.0.workspace_id }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// A short-lived signed URL that downloads the bytes (`Content-Disposition: attachment`).
    async fn download_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if !self.0.is_ready() {
            return Ok(None);
        }
        Ok(Some(ctx.data::<Files>()?.download_url(&self.0).await?))
    }
    /// A PNG of at most 256×256, made in the background for images (null until then).
    async fn thumbnail(&self, ctx: &Context<'_>) -> Result<Option<Thumbnail>> {
        let (Some(width), Some(height)) = (self.0.thumbnail_width, self.0.thumbnail_height) else {
            return Ok(None);
        };
        let url = ctx.data::<Files>()?.thumbnail_url(&self.0).await?;
        Ok(Some(Thumbnail { url, width, height }))
    }
}

#[derive(SimpleObject)]
pub struct Thumbnail {
    /// A short-lived signed URL of the PNG.
    url: String,
    width: i32,
    height: i32,
}

/// Where to send the bytes of a new file, and until when.
#[derive(SimpleObject)]
pub struct FileUpload {
    /// The file, not yet visible to others: `completeUpload` makes it so.
    file: File,
    /// `PUT` the bytes here, exactly `size` of them, before `expiresAt`.
    url: String,
    method: String,
    expires_at: DateTime<Utc>,
}

/// The workspaces subgraph's `Workspace`.
pub struct Workspace {
    id: Uuid,
}

#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// Files of this workspace, oldest first (viewers and above).
    async fn files(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PageConnection<File>> {
        let args = PageArgs::parse(first, after, last, before)?;
        let tenant = readable_workspace(ctx, self.id).await?;
        let page = ctx
            .data::<DataLoader<PageLoader>>()?
            .load_one((tenant, self.id, args))
            .await?
            .unwrap_or_default();
        let total = if wants_total(ctx) {
            ctx.data::<DataLoader<CountLoader>>()?.load_one((tenant, self.id)).await?.unwrap_or(0)
        } else {
            0
        };
        Ok(connection(page, total, |row: &FileRow| row.id, File))
    }

    /// The content types this workspace accepts (`image/*` style); null: any type but programs.
    async fn allowed_file_types(&self, ctx: &Context<'_>) -> Result<Option<Vec<String>>> {
        let tenant = readable_workspace(ctx, self.id).await?;
        Ok(ctx.data::<Files>()?.allow_list(tenant, self.id).await?)
    }
}

/// The workspace's organization, once the caller may read its files; NOT_FOUND otherwise.
async fn readable_workspace(ctx: &Context<'_>, workspace: Uuid) -> Result<Uuid> {
    let me = caller(ctx)?.require_user()?;
    let tenant = ctx.data::<DataLoader<TenantLoader>>()?.load_one((me, workspace)).await?;
    let Some(organization_id) = tenant else {
        return Err(pyairtable_kit::Error::NotFound("no such workspace".into()).into());
    };
    authz::require(ctx, "read_files", Resource::Workspace { id: workspace, organization_id }).await?;
    Ok(organization_id)
}

/// The tenants subgraph's `Organization`.
pub struct Organization {
    id: Uuid,
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// Bytes its files take (uploads in progress included) and how many it may hold.
    async fn file_storage(&self, ctx: &Context<'_>) -> Result<FileStorage> {
        authz::require(ctx, "read", Resource::Organization { id: self.id }).await?;
        let files = ctx.data::<Files>()?;
        let mut tx =
            pyairtable_kit::db::scoped(files.db(), &pyairtable_kit::db::Scope::tenant(self.id)).await?;
        let (used, own) = store::usage(&mut tx, self.id).await?;
        tx.commit().await.map_err(pyairtable_kit::Error::from)?;
        let quota = own.unwrap_or_else(|| i64::try_from(files.limits().quota).unwrap_or(i64::MAX));
        Ok(FileStorage { used_bytes: BigInt(used), quota_bytes: BigInt(quota) })
    }
}

#[derive(SimpleObject)]
pub struct FileStorage {
    used_bytes: BigInt,
    quota_bytes: BigInt,
}

/// The users subgraph's `User`.
pub struct User {
    id: Uuid,
    avatar_file_id: Option<Uuid>,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    #[graphql(external)]
    async fn avatar_file_id(&self) -> Option<ID> {
        self.avatar_file_id.map(|id| ID(id.to_string()))
    }
    /// The avatar: an image this user uploaded, visible to whoever may see the profile.
    #[graphql(requires = "avatarFileId")]
    async fn avatar(&self, ctx: &Context<'_>) -> Result<Option<File>> {
        let Some(file) = self.avatar_file_id else { return Ok(None) };
        let me = caller(ctx)?.require_user()?;
        Ok(ctx.data::<Files>()?.avatar(me, self.id, file).await?.map(File))
    }
}

pub struct Query;

#[Object]
impl Query {
    /// A file by id (null when it does not exist or the caller may not see it).
    async fn file(&self, ctx: &Context<'_>, id: ID) -> Result<Option<File>> {
        load(ctx, parse_id("id", &id)?).await
    }

    #[graphql(entity)]
    async fn find_file_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<File>> {
        match parse_id("id", &id) {
            Ok(id) => load(ctx, id).await,
            Err(_) => Ok(None),
        }
    }

    #[graphql(entity)]
    async fn find_workspace_by_id(&self, id: ID) -> Option<Workspace> {
        parse_id("id", &id).ok().map(|id| Workspace { id })
    }

    #[graphql(entity)]
    async fn find_organization_by_id(&self, id: ID) -> Option<Organization> {
        parse_id("id", &id).ok().map(|id| Organization { id })
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, #[graphql(key)] id: ID, avatar_file_id: Option<ID>) -> Option<User> {
        let avatar_file_id = avatar_file_id.and_then(|f| parse_id("avatarFileId", &f).ok());
        parse_id("id", &id).ok().map(|id| User { id, avatar_file_id })
    }
}

/// A ready file the caller may read, or `None`.
async fn load(ctx: &Context<'_>, id: Uuid) -> Result<Option<File>> {
    let me = caller(ctx)?.require_user()?;
    let files = ctx.data::<Files>()?;
    let row = match files.locate(me, id).await {
        Ok((row, tx)) => {
            tx.commit().await.map_err(pyairtable_kit::Error::from)?;
            row
        }
        Err(pyairtable_kit::Error::NotFound(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let visible = row.is_ready() || row.owner_id == me;
    let allowed = authz::allowed(ctx, "read_files", &[resource(&row)]).await?;
    Ok((visible && allowed.first().copied().unwrap_or(false)).then_some(File(row)))
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Starts an upload (editors and above): returns a short-lived URL to `PUT` exactly `size`
    /// bytes to. The content type is checked against the bytes at `completeUpload`.
    async fn create_upload(
        &self,
        ctx: &Context<'_>,
        workspace_id: ID,
        name: String,
        size: BigInt,
        content_type: String,
        #[graphql(desc = "SHA-256 of the bytes (hex); when given, the upload must match it")] sha256: Option<
            String,
        >,
    ) -> Result<FileUpload> {
        let me = caller(ctx)?.require_user()?;
        let workspace = parse_id("workspaceId", &workspace_id)?;
        let files = ctx.data::<Files>()?;
        let claim = Claim::parse(&name, size.0, &content_type, sha256.as_deref(), files.limits().max_size)?;
        let (row, ticket) = files.create_upload(me, workspace, claim).await?;
        Ok(FileUpload {
            file: File(row),
            url: ticket.url,
            method: "PUT".into(),
            expires_at: ticket.expires_at,
        })
    }

    /// Checks the uploaded bytes (size, SHA-256, type, the workspace's allowed types) and makes
    /// the file visible; a file that fails is discarded with the reason.
    async fn complete_upload(&self, ctx: &Context<'_>, id: ID) -> Result<File> {
        let me = caller(ctx)?.require_user()?;
        let id = parse_id("id", &id)?;
        Ok(File(ctx.data::<Files>()?.complete(me, id).await?))
    }

    /// Uploads a small file in the request itself (GraphQL multipart request spec; the request
    /// needs an `apollo-require-preflight` header).
    async fn upload_file(&self, ctx: &Context<'_>, workspace_id: ID, file: Upload) -> Result<File> {
        let me = caller(ctx)?.require_user()?;
        let workspace = parse_id("workspaceId", &workspace_id)?;
        let value = file.value(ctx).map_err(|e| pyairtable_kit::Error::bad_input("file", e.to_string()))?;
        Ok(File(ctx.data::<Files>()?.upload_spooled(me, workspace, value).await?))
    }

    /// Deletes a file: your own as an editor, anyone's as a creator or owner of the workspace.
    async fn delete_file(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let me = caller(ctx)?.require_user()?;
        ctx.data::<Files>()?.delete(me, parse_id("id", &id)?).await?;
        Ok(true)
    }

    /// Sets the content types a workspace accepts (its owners); null goes back to the default
    /// (any type but programs).
    async fn set_allowed_file_types(
        &self,
        ctx: &Context<'_>,
        workspace_id: ID,
        content_types: Option<Vec<String>>,
    ) -> Result<Workspace> {
        let me = caller(ctx)?.require_user()?;
        let workspace = parse_id("workspaceId", &workspace_id)?;
        ctx.data::<Files>()?.set_allow_list(me, workspace, content_types.as_deref()).await?;
        Ok(Workspace { id: workspace })
    }
}
