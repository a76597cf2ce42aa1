//! The object store (object_store): a local folder by default, S3 or any S3-compatible server
//! when configured. Bytes are streamed through, never held whole: uploads go out in parts while
//! they are counted, hashed and their type detected; downloads are streamed back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{
    Attribute, AttributeValue, Attributes, GetResultPayload, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, WriteMultipart,
};
use pyairtable_kit::Error;
use pyairtable_kit::config::ObjectStoreConfig;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::detect::{Detected, SNIFF_BYTES, content_disposition, detect};

/// Size of the parts uploads are written in (S3 wants at least 5 MiB but the last).
const PART: usize = 8 * 1024 * 1024;
/// Parts in flight per upload: with the one being filled, at most three parts in memory.
const PARTS_IN_FLIGHT: usize = 2;
/// Read size of local downloads.
const READ_CHUNK: usize = 256 * 1024;

/// Where the bytes live, and how clients reach them.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Set for S3: signs URLs clients upload and download with directly.
    s3: Option<Arc<AmazonS3>>,
    prefix: String,
}

/// What streaming a file in found out.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub size: u64,
    pub sha256: [u8; 32],
    pub detected: Detected,
}

/// Why streaming a file in failed.
#[derive(Debug)]
pub enum IngestError {
    /// More bytes than allowed.
    TooLarge,
    /// The type check refused the first bytes.
    Refused(Error),
    /// The client's stream broke off.
    Body(String),
    /// The object store failed.
    Store(object_store::Error),
}

impl From<IngestError> for Error {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::TooLarge => {
                Error::Refused { code: crate::codes::FILE_TOO_LARGE, message: "the file is too large".into() }
            }
            IngestError::Refused(err) => err,
            IngestError::Body(why) => Error::bad_input("file", format!("the upload broke off: {why}")),
            IngestError::Store(err) => Error::internal(err),
        }
    }
}

impl Storage {
    pub fn from_config(config: &ObjectStoreConfig) -> anyhow::Result<Self> {
        match config {
            ObjectStoreConfig::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("PYAIRTABLE_OBJECT_STORE_URL: cannot create {}: {e}", dir.display())
                })?;
                let local = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| anyhow::anyhow!("PYAIRTABLE_OBJECT_STORE_URL: {}: {e}", dir.display()))?;
                Ok(Self { store: Arc::new(local), s3: None, prefix: String::new() })
            }
            ObjectStoreConfig::S3 { bucket, prefix, options } => {
                let s3 = pyairtable_kit::objects::s3_builder(bucket, options)
                    .build()
                    .map_err(|e| anyhow::anyhow!("PYAIRTABLE_OBJECT_STORE_URL: S3: {e}"))?;
                let s3 = Arc::new(s3);
                Ok(Self { store: s3.clone(), s3: Some(s3), prefix: prefix.clone() })
            }
        }
    }

    /// Whether clients talk to S3 directly (presigned URLs) rather than to our endpoint.
    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() { Path::from(key) } else { Path::from(format!("{}/{key}", self.prefix)) }
    }

    /// The object of a file's bytes.
    pub fn content(&self, tenant: Uuid, file: Uuid) -> Path {
        self.path(&format!("tenants/{tenant}/files/{file}"))
    }

    /// Where an S3 client uploads before completeUpload checks and moves the bytes.
    pub fn staging(&self, tenant: Uuid, file: Uuid) -> Path {
        self.path(&format!("staging/{tenant}/{file}"))
    }

    pub fn thumbnail(&self, tenant: Uuid, file: Uuid) -> Path {
        self.path(&format!("tenants/{tenant}/thumbnails/{file}.png"))
    }

    /// Streams `body` into `path` in parts, hashing and counting it; `check` judges the type
    /// from the first bytes before anything is written (on S3 the object also gets that type and
    /// a `Content-Disposition` for `name`). Nothing is left at `path` on failure.
    pub async fn ingest<S, E>(
        &self,
        path: &Path,
        mut body: S,
        (limit, name): (u64, &str),
        check: impl Fn(&Detected) -> pyairtable_kit::Result<()>,
    ) -> Result<Ingested, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut tally =
            Tally { limit, size: 0, hasher: Sha256::new(), head: Vec::with_capacity(SNIFF_BYTES) };
        let mut held = Vec::new();
        while tally.head.len() < SNIFF_BYTES {
            let Some(chunk) = body.next().await else { break };
            let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
            tally.add(&chunk)?;
            held.push(chunk);
        }
        let detected = detect(&tally.head);
        check(&detected).map_err(IngestError::Refused)?;
        let mut options = PutMultipartOptions::default();
        if self.s3.is_some() {
            options.attributes = Attributes::from_iter([
                (Attribute::ContentType, AttributeValue::from(detected.mime.clone())),
                (Attribute::ContentDisposition, AttributeValue::from(content_disposition(name))),
            ]);
        }
        let upload = self.store.put_multipart_opts(path, options).await.map_err(IngestError::Store)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        for chunk in held {
            writer.put(chunk);
        }
        match feed(&mut writer, body, &mut tally).await {
            Ok(()) => {
                writer.finish().await.map_err(IngestError::Store)?;
                Ok(Ingested { size: tally.size, sha256: tally.hasher.finalize().into(), detected })
            }
            Err(err) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(%abort, "aborting a refused upload");
                }
                Err(err)
            }
        }
    }

    /// The bytes of `path`, as a stream, and their size.
    pub async fn read(
        &self,
        path: &Path,
    ) -> object_store::Result<(u64, BoxStream<'static, std::io::Result<Bytes>>)> {
        let got = self.store.get(path).await?;
        let size = got.meta.size;
        let stream = match got.payload {
            GetResultPayload::File(file, _) => {
                let file = tokio::fs::File::from_std(file);
                tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).boxed()
            }
            GetResultPayload::Stream(stream) => stream.map_err(std::io::Error::other).boxed(),
        };
        Ok((size, stream))
    }

    pub async fn put(&self, path: &Path, bytes: Bytes) -> object_store::Result<()> {
        self.store.put(path, bytes.into()).await.map(|_| ())
    }

    /// Removes an object; one that is not there is fine.
    pub async fn delete(&self, path: &Path) -> object_store::Result<()> {
        match self.store.delete(path).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// S3: a URL that accepts one PUT of exactly `size` bytes into `path` (the staging key: what
    /// arrives there is checked on its way to the file's own key). `Content-Length` is a signed
    /// header, so S3 refuses a PUT of any other length (`SignatureDoesNotMatch`); completeUpload
    /// still compares the staged size, for servers that do not check signatures.
    pub async fn presigned_put(
        &self,
        path: &Path,
        ttl: Duration,
        size: u64,
    ) -> object_store::Result<Option<String>> {
        let Some(s3) = &self.s3 else { return Ok(None) };
        let credential = s3.credentials().get_credential().await?;
        let url = s3.signed_url(http::Method::PUT, path, ttl).await?;
        let bound = crate::presign::resign(&url, &credential, &[("content-length", size.to_string())]);
        let bound = bound.ok_or_else(|| object_store::Error::Generic {
            store: "S3",
            source: format!("cannot bind the length to the presigned URL of {path}").into(),
        })?;
        Ok(Some(bound.to_string()))
    }

    /// S3: a URL that GETs `path` with our content type and disposition (signed with it).
    pub async fn presigned_get(
        &self,
        path: &Path,
        ttl: Duration,
        content_type: &str,
        disposition: &str,
    ) -> object_store::Result<Option<String>> {
        let Some(s3) = &self.s3 else { return Ok(None) };
        let options = SignedUrlOptions::default().with_query([
            ("response-content-type", content_type),
            ("response-content-disposition", disposition),
        ]);
        Ok(Some(s3.signed_url_opts(http::Method::GET, path, ttl, &options).await?.to_string()))
    }
}

/// Counts, hashes and keeps the first bytes of what streams in.
struct Tally {
    limit: u64,
    size: u64,
    hasher: Sha256,
    head: Vec<u8>,
}

impl Tally {
    fn add(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(IngestError::TooLarge);
        }
        self.hasher.update(chunk);
        let wanted = SNIFF_BYTES.saturating_sub(self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..wanted]);
        Ok(())
    }
}

async fn feed<S, E>(writer: &mut WriteMultipart, mut body: S, tally: &mut Tally) -> Result<(), IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
        tally.add(&chunk)?;
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(IngestError::Store)?;
        writer.put(chunk);
    }
    Ok(())
}
