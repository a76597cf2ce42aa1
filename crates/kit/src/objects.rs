//! The S3 client of the configured object store, built one way for the files subgraph and for
//! `pyairtable doctor`, so that the doctor checks the store exactly as the service will use it.

use object_store::aws::AmazonS3Builder;

use crate::config::Secret;

/// A builder for `bucket` with the process's `AWS_*` variables (`options` of
/// [`ObjectStoreConfig::S3`](crate::config::ObjectStoreConfig::S3)). Variables object_store does
/// not know (`AWS_PROFILE`, ...) are not for it and are left out.
pub fn s3_builder(bucket: &str, options: &[(String, Secret)]) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
    for (name, value) in options {
        if let Ok(key) = name.to_ascii_lowercase().parse() {
            builder = builder.with_config(key, value.expose());
        }
    }
    builder
}

/// Where the S3 requests go, for messages: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`) when set,
/// AWS's own endpoint otherwise.
pub fn s3_endpoint(options: &[(String, Secret)]) -> String {
    let named = |wanted: &str| options.iter().find(|(name, _)| name == wanted).map(|(_, v)| v.expose());
    match named("AWS_ENDPOINT_URL").or_else(|| named("AWS_ENDPOINT")) {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let region = named("AWS_REGION").or_else(|| named("AWS_DEFAULT_REGION")).unwrap_or("us-east-1");
            format!("https://s3.{region}.amazonaws.com")
        }
    }
}
