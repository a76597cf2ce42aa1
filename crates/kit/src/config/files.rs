//! Settings of the files subgraph: where the bytes go (a local folder or S3) and the limits.

use std::path::PathBuf;

use super::{ConfigError, Env, Secret};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// The largest object one S3 PUT (and so a presigned upload URL) takes.
pub const MAX_FILE_SIZE: u64 = 5 * GIB;
/// S3 refuses presigned URLs valid for longer than a week.
const MAX_URL_TTL_SECS: u64 = 7 * 24 * 3600;

/// Where file contents are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectStoreConfig {
    /// A folder on local disk (`<data dir>/files` by default, or `file:///path`).
    Local(PathBuf),
    /// An S3 bucket (AWS or any S3-compatible server), with an optional key prefix. `options`
    /// are the process's `AWS_*` variables (credentials, region, `AWS_ENDPOINT_URL`, ...).
    S3 { bucket: String, prefix: String, options: Vec<(String, Secret)> },
}

/// The files subgraph's settings.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    pub store: ObjectStoreConfig,
    /// Base URL of the files service's own upload/download endpoints, as clients reach it; unset:
    /// the public URL in one process, the address the files service listens on otherwise.
    pub url: Option<String>,
    /// The largest file accepted, in bytes.
    pub max_size: u64,
    /// The largest file accepted in a GraphQL multipart request (spooled to a temporary file).
    pub multipart_max_size: u64,
    /// Bytes each organization may hold, unless its own quota is set (`files.usage.quota_bytes`).
    pub quota: u64,
    /// How long signed upload and download URLs stay valid.
    pub url_ttl_secs: u64,
}

pub(super) fn files_config(env: &Env, data_dir: &std::path::Path) -> Result<FilesConfig, ConfigError> {
    let max_size = env.size("PYAIRTABLE_FILES_MAX_SIZE", 1, MAX_FILE_SIZE)?.unwrap_or(GIB);
    let multipart_max_size =
        env.size("PYAIRTABLE_FILES_MULTIPART_MAX_SIZE", 1, max_size)?.unwrap_or((32 * MIB).min(max_size));
    Ok(FilesConfig {
        store: object_store(env, data_dir)?,
        url: env.public_url("PYAIRTABLE_FILES_URL")?,
        max_size,
        multipart_max_size,
        quota: env.size("PYAIRTABLE_FILES_QUOTA", 0, u64::MAX / 2)?.unwrap_or(10 * GIB),
        url_ttl_secs: env.bounded("PYAIRTABLE_FILES_URL_TTL_SECONDS", 1, MAX_URL_TTL_SECS)?.unwrap_or(900),
    })
}

fn object_store(env: &Env, data_dir: &std::path::Path) -> Result<ObjectStoreConfig, ConfigError> {
    const NAME: &str = "PYAIRTABLE_OBJECT_STORE_URL";
    let Some(raw) = env.string(NAME) else { return Ok(ObjectStoreConfig::Local(data_dir.join("files"))) };
    if let Some(path) = raw.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(ConfigError::new(NAME, "file:// takes an absolute path (file:///srv/files)"));
        }
        return Ok(ObjectStoreConfig::Local(PathBuf::from(path)));
    }
    let Some(rest) = raw.strip_prefix("s3://") else {
        return Err(ConfigError::new(
            NAME,
            format!("{raw:?}: expected s3://bucket[/prefix] or file:///path"),
        ));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if !valid_bucket(bucket) {
        return Err(ConfigError::new(NAME, format!("{bucket:?} is not an S3 bucket name")));
    }
    if prefix.contains(['?', '#', '\\']) || prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(ConfigError::new(NAME, format!("{prefix:?} is not a key prefix")));
    }
    for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"] {
        if let Some(url) = env.string(name) {
            let ok = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if ok.is_none_or(|rest| rest.is_empty()) {
                return Err(ConfigError::new(name, format!("{url:?} is not an http(s) URL")));
            }
        }
    }
    Ok(ObjectStoreConfig::S3 {
        bucket: bucket.to_owned(),
        prefix: prefix.trim_matches('/').to_owned(),
        options: env.aws(),
    })
}

/// S3's rules: 3..=63 lower-case letters, digits, dots and hyphens, starting and ending with a
/// letter or digit.
fn valid_bucket(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last())
}

/// Parses `1048576`, `512KiB`, `10MiB`, `1GiB`, `2TiB` (binary units; `B` optional).
pub(super) fn parse_size(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{raw:?} is not a size (e.g. 10MiB)"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "TiB" => 1024 * GIB,
        other => return Err(format!("unknown unit {other:?}; use B, KiB, MiB, GiB or TiB")),
    };
    number.checked_mul(factor).ok_or_else(|| format!("{raw:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(MIB));
        assert_eq!(parse_size("10MiB"), Ok(10 * MIB));
        assert_eq!(parse_size("1 GiB"), Ok(GIB));
        assert!(parse_size("10MB").is_err() && parse_size("-1").is_err() && parse_size("GiB").is_err());
        assert!(parse_size("99999999999999TiB").is_err());
    }

    #[test]
    fn the_default_store_is_a_folder_in_the_data_dir() {
        let files = config(&[("PYAIRTABLE_DATA_DIR", "/srv/pyairtable")]).expect("valid").files;
        assert_eq!(files.store, ObjectStoreConfig::Local(PathBuf::from("/srv/pyairtable/files")));
        assert_eq!((files.max_size, files.multipart_max_size, files.url_ttl_secs), (GIB, 32 * MIB, 900));
    }

    #[test]
    fn s3_urls_and_aws_variables_are_checked() {
        let files = config(&[
            ("PYAIRTABLE_OBJECT_STORE_URL", "s3://my-bucket/tenant-files/"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ])
        .expect("valid")
        .files;
        let ObjectStoreConfig::S3 { bucket, prefix, options } = &files.store else { panic!("s3") };
        assert_eq!((bucket.as_str(), prefix.as_str(), options.len()), ("my-bucket", "tenant-files", 2));
        assert!(!format!("{files:?}").contains("very-secret"), "AWS variables are secrets");
        for (name, value) in [
            ("PYAIRTABLE_OBJECT_STORE_URL", "s3://"),
            ("PYAIRTABLE_OBJECT_STORE_URL", "s3://Bad_Bucket"),
            ("PYAIRTABLE_OBJECT_STORE_URL", "s3://bucket/../x"),
            ("PYAIRTABLE_OBJECT_STORE_URL", "gs://bucket"),
            ("PYAIRTABLE_OBJECT_STORE_URL", "file://relative"),
            ("PYAIRTABLE_FILES_MAX_SIZE", "6GiB"),
            ("PYAIRTABLE_FILES_MAX_SIZE", "lots"),
            ("PYAIRTABLE_FILES_URL_TTL_SECONDS", "0"),
            ("PYAIRTABLE_FILES_URL", "ftp://files"),
        ] {
            let err = config(&[(name, value)]).expect_err(value);
            assert_eq!(err.variable, name, "{value}");
        }
        let err = config(&[("PYAIRTABLE_OBJECT_STORE_URL", "s3://b-1"), ("AWS_ENDPOINT_URL", "minio:9000")])
            .expect_err("endpoint");
        assert_eq!(err.variable, "AWS_ENDPOINT_URL");
    }

    #[test]
    fn the_multipart_limit_stays_under_the_file_limit() {
        let files = config(&[("PYAIRTABLE_FILES_MAX_SIZE", "1MiB")]).expect("valid").files;
        assert_eq!(files.multipart_max_size, MIB);
        let err =
            config(&[("PYAIRTABLE_FILES_MAX_SIZE", "1MiB"), ("PYAIRTABLE_FILES_MULTIPART_MAX_SIZE", "2MiB")])
                .expect_err("above the file limit");
        assert_eq!(err.variable, "PYAIRTABLE_FILES_MULTIPART_MAX_SIZE");
    }
}
