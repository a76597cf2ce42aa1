//! The doctor's object-store check: the store the files subgraph is configured with (a local
//! folder, or an S3 bucket) takes a probe object and gives it back up, and when it does not the
//! report says why: the bucket is missing, the credentials are refused, or the server is out of
//! reach.

use std::path::Path as FsPath;

use object_store::aws::AmazonS3ConfigKey;
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStoreExt, RetryConfig};

use crate::config::{Config, ObjectStoreConfig, Secret};
use crate::doctor::{Check, Status, TIMEOUT, bounded};

const NAME: &str = "object store";

/// Checks the files subgraph's object store (`PYAIRTABLE_OBJECT_STORE_URL`).
pub(crate) async fn object_store(config: &Config) -> Check {
    match &config.files.store {
        ObjectStoreConfig::Local(dir) => local(dir).await,
        ObjectStoreConfig::S3 { bucket, prefix, options } => {
            let place = format!("s3://{bucket} at {}", crate::objects::s3_endpoint(options));
            bounded(NAME, &place, s3(bucket, prefix, options, &place)).await
        }
    }
}

async fn local(dir: &FsPath) -> Check {
    let probe = dir.join(format!(".doctor-{}", uuid::Uuid::now_v7()));
    let written = async {
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await
    };
    match written.await {
        Ok(()) => Check::new(
            NAME,
            Status::Ok,
            format!(
                "local folder {} is writable (files stay on this machine: run one files replica, \
                 or share the folder, or set PYAIRTABLE_OBJECT_STORE_URL=s3://...)",
                dir.display()
            ),
        ),
        Err(err) => Check::new(
            NAME,
            Status::Fail,
            format!("local folder {} is not writable: {err} (PYAIRTABLE_OBJECT_STORE_URL)", dir.display()),
        ),
    }
}

/// Puts a probe object under the key prefix, then deletes it: the bucket exists, the
/// credentials may write to it, and the server answers.
async fn s3(bucket: &str, prefix: &str, options: &[(String, Secret)], place: &str) -> Check {
    let timeout = format!("{}s", TIMEOUT.as_secs().saturating_sub(1).max(1));
    let built = crate::objects::s3_builder(bucket, options)
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), &timeout)
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout), &timeout)
        .with_retry(RetryConfig { max_retries: 0, ..RetryConfig::default() })
        .build();
    let store = match built {
        Ok(store) => store,
        Err(err) => {
            return Check::new(NAME, Status::Fail, format!("{place}: the S3 settings are unusable: {err}"));
        }
    };
    let key = format!(".pyairtable-doctor/{}", uuid::Uuid::now_v7());
    let probe = if prefix.is_empty() { Path::from(key) } else { Path::from(format!("{prefix}/{key}")) };
    let probed = async {
        store.put(&probe, bytes::Bytes::from_static(b"ok").into()).await?;
        store.delete(&probe).await
    };
    match probed.await {
        Ok(()) => Check::new(NAME, Status::Ok, format!("{place}: a probe object was written and deleted")),
        Err(err) => Check::new(NAME, Status::Fail, failure(&err, bucket, place)),
    }
}

/// What went wrong, in the reader's terms.
fn failure(err: &object_store::Error, bucket: &str, place: &str) -> String {
    let text = err.to_string();
    let code = s3_code(&text);
    let refused = ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"];
    match (err, code) {
        (_, Some("NoSuchBucket")) | (object_store::Error::NotFound { .. }, _) => format!(
            "{place}: the bucket {bucket:?} does not exist: create it, or fix PYAIRTABLE_OBJECT_STORE_URL"
        ),
        (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }, _) => {
            credentials(place, code)
        }
        (_, Some(code)) if refused.contains(&code) => credentials(place, Some(code)),
        (_, Some(code)) => format!("{place} answered {code}: {}", root_cause(err)),
        (_, None) => format!("{place} is unreachable: {} (AWS_ENDPOINT_URL, AWS_REGION)", root_cause(err)),
    }
}

fn credentials(place: &str, code: Option<&str>) -> String {
    let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
    format!(
        "{place} refused the credentials{code}: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY \
         and the bucket's policy (the files service writes and deletes objects)"
    )
}

/// The `<Code>` of an S3 error document quoted in `text`.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

/// The innermost error: "Connection refused (os error 111)" rather than the layers above it.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_codes_are_read_from_the_error_document() {
        let text = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\
            <Error><Code>InvalidAccessKeyId</Code><Message>no</Message></Error>";
        assert_eq!(s3_code(text), Some("InvalidAccessKeyId"));
        assert_eq!(s3_code("error sending request"), None);
    }

    #[test]
    fn refused_credentials_are_named() {
        let err = object_store::Error::Generic {
            store: "S3",
            source: "403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code></Error>".into(),
        };
        let said = failure(&err, "b", "s3://b at http://s3");
        assert!(said.contains("refused the credentials (SignatureDoesNotMatch)"), "{said}");
    }
}
