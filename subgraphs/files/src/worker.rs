//! Background work: thumbnails from a SQL queue (`FOR UPDATE SKIP LOCKED`, so any number of
//! workers and replicas share it), and the sweep that removes the objects of deleted files and
//! of uploads that never completed.

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use pyairtable_kit::db::Scope;
use pyairtable_kit::{Error, Lifecycle, Result};
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::service::Files;
use crate::store;

/// Channel notified when a thumbnail job is queued.
const CHANNEL: &str = "pyairtable_files_jobs";
const POLL: Duration = Duration::from_secs(5);
/// Images larger than this get no thumbnail (decoding holds them in memory).
const MAX_SOURCE: u64 = 40 * 1024 * 1024;
/// Thumbnails fit in this square.
const EDGE: u32 = 256;
const MAX_ATTEMPTS: i32 = 3;
/// How often the sweep runs, and how long after its URL expired an abandoned upload is removed.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
pub const ABANDONED_GRACE_SECS: i64 = 600;

/// Runs the thumbnail worker and the sweep on the process's lifecycle: each finishes the job in
/// hand and returns once the shutdown begins (or the pool closes).
pub fn spawn(files: Files, lifecycle: &Lifecycle) {
    let (thumbnails, stop) = (files.clone(), lifecycle.clone());
    lifecycle.spawn(async move { thumbnail_loop(thumbnails, stop).await });
    let stop = lifecycle.clone();
    lifecycle.spawn(async move {
        loop {
            tokio::select! {
                () = stop.stopping() => return,
                () = tokio::time::sleep(SWEEP_EVERY) => {}
            }
            if files.db().is_closed() {
                return;
            }
            if let Err(err) = sweep(&files, Utc::now()).await {
                tracing::error!(%err, "sweeping files");
            }
        }
    });
}

async fn thumbnail_loop(files: Files, stop: Lifecycle) {
    let mut listener = match PgListener::connect_with(files.db()).await {
        Ok(mut listener) => listener.listen(CHANNEL).await.ok().map(|()| listener),
        Err(err) => {
            tracing::warn!(%err, "thumbnail worker: no LISTEN connection; polling only");
            None
        }
    };
    while !stop.is_stopping() && !files.db().is_closed() {
        while !stop.is_stopping() {
            match next_thumbnail(&files).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    tracing::error!(%err, "thumbnail worker");
                    break;
                }
            }
        }
        let wake = async {
            match listener.as_mut() {
                Some(listener) => {
                    let _ = tokio::time::timeout(POLL, listener.recv()).await;
                }
                None => tokio::time::sleep(POLL).await,
            }
        };
        tokio::select! {
            () = stop.stopping() => {}
            () = wake => {}
        }
    }
}

/// Takes one due job (skipping those other workers hold) and does it; false when none is due.
pub async fn next_thumbnail(files: &Files) -> Result<bool> {
    let mut tx = files.db().begin().await?;
    let Some((file, tenant, attempts)) = store::claim_job(&mut tx).await? else {
        tx.commit().await?;
        return Ok(false);
    };
    Scope::tenant(tenant).apply(&mut tx).await?;
    let row = store::by_ids(&mut tx, &[file]).await?.pop().filter(store::FileRow::is_ready);
    let outcome = match row {
        Some(row) if row.size as u64 <= MAX_SOURCE => thumbnail(files, tenant, file).await,
        _ => Ok(None),
    };
    match outcome {
        Ok(Some((width, height))) => store::set_thumbnail(&mut tx, file, width as i32, height as i32).await?,
        Ok(None) => {}
        Err(err) if attempts + 1 < MAX_ATTEMPTS => {
            tracing::warn!(%err, %file, attempts, "thumbnail failed; will retry");
            store::retry_job(&mut tx, file, 10 << attempts).await?;
            tx.commit().await?;
            return Ok(true);
        }
        Err(err) => tracing::warn!(%err, %file, "thumbnail failed; giving up"),
    }
    store::finish_job(&mut tx, file).await?;
    tx.commit().await?;
    Ok(true)
}

/// Decodes the image (with limits: a small file may claim huge dimensions) and stores a PNG
/// that fits in 256×256; `None` when the bytes do not decode as an image.
async fn thumbnail(files: &Files, tenant: Uuid, file: Uuid) -> Result<Option<(u32, u32)>> {
    let (_, stream) =
        files.storage().read(&files.storage().content(tenant, file)).await.map_err(Error::internal)?;
    let chunks: Vec<Bytes> = stream.try_collect().await.map_err(Error::internal)?;
    let source = chunks.concat();
    let made = tokio::task::spawn_blocking(move || render(&source)).await.map_err(Error::internal)?;
    let Some((png, width, height)) = made else { return Ok(None) };
    files
        .storage()
        .put(&files.storage().thumbnail(tenant, file), png.into())
        .await
        .map_err(Error::internal)?;
    Ok(Some((width, height)))
}

fn render(source: &[u8]) -> Option<(Vec<u8>, u32, u32)> {
    let mut reader = image::ImageReader::new(Cursor::new(source)).with_guessed_format().ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().ok()?.thumbnail(EDGE, EDGE);
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).ok()?;
    Some((png, image.width(), image.height()))
}

/// Removes the objects of deleted files and of uploads abandoned at `at`, and staging objects
/// of completed S3 uploads; returns how many files it dealt with.
pub async fn sweep(files: &Files, at: DateTime<Utc>) -> Result<usize> {
    let candidates = store::sweep_candidates(files.db(), at, ABANDONED_GRACE_SECS, 500).await?;
    let mut done = 0;
    for (id, tenant) in candidates {
        match sweep_one(files, id, tenant, at).await {
            Ok(()) => done += 1,
            Err(err) => tracing::warn!(%err, %id, "sweeping a file; next time"),
        }
    }
    Ok(done)
}

async fn sweep_one(files: &Files, id: Uuid, tenant: Uuid, at: DateTime<Utc>) -> Result<()> {
    let storage = files.storage();
    let mut tx = pyairtable_kit::db::scoped(files.db(), &Scope::tenant(tenant)).await?;
    let Some(row) = store::by_ids(&mut tx, &[id]).await?.pop() else { return Ok(()) };
    let expired = row.upload_expires_at.is_some_and(|e| e < at);
    if row.deleted_at.is_none() && row.state == "ready" {
        if row.staged && expired {
            storage.delete(&storage.staging(tenant, id)).await.map_err(Error::internal)?;
            store::clear_staged(&mut tx, id).await?;
        }
        tx.commit().await?;
        return Ok(());
    }
    if row.deleted_at.is_none() {
        let abandoned =
            row.upload_expires_at.is_some_and(|e| e < at - chrono::Duration::seconds(ABANDONED_GRACE_SECS));
        if !abandoned {
            tx.commit().await?;
            return Ok(());
        }
        // An upload that never completed: its reservation leaves the quota with it.
        store::release(&mut tx, tenant, row.size).await?;
    }
    for path in [storage.content(tenant, id), storage.staging(tenant, id), storage.thumbnail(tenant, id)] {
        storage.delete(&path).await.map_err(Error::internal)?;
    }
    store::purge(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}
