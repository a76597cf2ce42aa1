//! A presigned S3 PUT that binds the length of the body. object_store's signer will not sign
//! `Content-Length` (it keeps that header for itself), so the URL it presigns for the staging key
//! is signed again here, SigV4 query signing with `content-length;host` as the signed headers:
//! S3 then refuses (`SignatureDoesNotMatch`) a PUT of any other length than the declared one.
//! Everything else — endpoint, path style, key encoding, scope, expiry — is object_store's.

use hmac::{Hmac, Mac};
use object_store::aws::AwsCredential;
use object_store::signer::Url;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// SigV4's URI encoding: everything but the unreserved characters.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Signs `url` (a SigV4 presigned URL of object_store) again, binding `headers` (lower-case
/// names, besides `host`) with `credential`, the credential it is signed with from now on.
pub fn resign(url: &Url, credential: &AwsCredential, headers: &[(&str, String)]) -> Option<Url> {
    let host = match (url.host_str()?, url.port()) {
        (host, Some(port)) => format!("{host}:{port}"),
        (host, None) => host.to_owned(),
    };
    let mut bound: Vec<(String, String)> =
        headers.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect();
    bound.push(("host".to_owned(), host));
    bound.sort();
    let signed_headers = bound.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = bound.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();

    let mut query: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "X-Amz-Signature" && name != "X-Amz-Security-Token")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let scope = value(&query, "X-Amz-Credential")?.split_once('/')?.1.to_owned();
    let date = value(&query, "X-Amz-Date")?.to_owned();
    set(&mut query, "X-Amz-Credential", format!("{}/{scope}", credential.key_id));
    set(&mut query, "X-Amz-SignedHeaders", signed_headers.clone());
    if let Some(token) = &credential.token {
        query.push(("X-Amz-Security-Token".to_owned(), token.clone()));
    }

    let canonical_request = format!(
        "PUT\n{}\n{}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
        url.path(),
        canonical_query(&query)
    );
    let digest = hex(&Sha256::digest(canonical_request.as_bytes()));
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{digest}");
    let mac = signing_key(&credential.secret_key, &scope)?.chain_update(&string_to_sign);
    let signature = hex(&mac.finalize().into_bytes());

    let mut signed = url.clone();
    signed.query_pairs_mut().clear().extend_pairs(&query).append_pair("X-Amz-Signature", &signature);
    Some(signed)
}

fn value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn set(query: &mut [(String, String)], name: &str, new: String) {
    if let Some((_, v)) = query.iter_mut().find(|(n, _)| n == name) {
        *v = new;
    }
}

fn canonical_query(query: &[(String, String)]) -> String {
    let encode = |s: &str| utf8_percent_encode(s, STRICT).to_string();
    let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    pairs.sort_unstable();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The HMAC keyed for `scope` (`date/region/service/aws4_request`), ready for the string to sign.
fn signing_key(secret: &str, scope: &str) -> Option<Hmac<Sha256>> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
        mac.update(part.as_bytes());
        key = mac.finalize().into_bytes().to_vec();
    }
    Hmac::<Sha256>::new_from_slice(&key).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use object_store::aws::AmazonS3Builder;
    use object_store::path::Path;
    use object_store::signer::Signer;

    use super::*;

    async fn presigned(token: Option<&str>) -> (Url, AwsCredential) {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name("bucket")
            .with_region("eu-west-3")
            .with_endpoint("http://127.0.0.1:9000")
            .with_allow_http(true)
            .with_access_key_id("AKIDEXAMPLE")
            .with_secret_access_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        if let Some(token) = token {
            builder = builder.with_token(token);
        }
        let s3 = builder.build().expect("s3");
        let path = Path::from("some prefix/staging/ü+&=/file");
        let url = s3.signed_url(http::Method::PUT, &path, Duration::from_secs(900)).await.expect("url");
        let credential = AwsCredential {
            key_id: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            token: token.map(str::to_owned),
        };
        (url, credential)
    }

    fn param(url: &Url, name: &str) -> String {
        url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
    }

    #[tokio::test]
    async fn signing_host_alone_gives_object_stores_own_signature() {
        for token in [None, Some("session/token+=")] {
            let (url, credential) = presigned(token).await;
            let again = resign(&url, &credential, &[]).expect("resigned");
            assert_eq!(param(&again, "X-Amz-Signature"), param(&url, "X-Amz-Signature"), "{url}");
        }
    }

    #[tokio::test]
    async fn the_length_is_part_of_the_signature() {
        let (url, credential) = presigned(None).await;
        let five = resign(&url, &credential, &[("content-length", "5".into())]).expect("resigned");
        let six = resign(&url, &credential, &[("content-length", "6".into())]).expect("resigned");
        assert_eq!(param(&five, "X-Amz-SignedHeaders"), "content-length;host");
        assert_ne!(param(&five, "X-Amz-Signature"), param(&url, "X-Amz-Signature"));
        assert_ne!(param(&five, "X-Amz-Signature"), param(&six, "X-Amz-Signature"));
        assert_eq!(param(&five, "X-Amz-Date"), param(&url, "X-Amz-Date"));
    }
}
