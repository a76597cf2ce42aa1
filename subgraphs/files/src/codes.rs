//! The error codes of the files subgraph, besides the kit's (`extensions.code` in GraphQL, `code`
//! in the JSON body of the HTTP endpoints).

/// The file is larger than PYAIRTABLE_FILES_MAX_SIZE (or than it was declared).
pub const FILE_TOO_LARGE: &str = "FILE_TOO_LARGE";
/// The organization's storage quota would be exceeded.
pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
/// The bytes are not what was declared, or the workspace does not accept that type.
pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
/// The upload cannot complete: bytes missing, of another size, or another checksum.
pub const UPLOAD_INVALID: &str = "UPLOAD_INVALID";
/// A signed URL whose signature does not verify (altered, or not ours).
pub const INVALID_SIGNATURE: &str = "INVALID_SIGNATURE";
/// A signed URL past its expiry.
pub const URL_EXPIRED: &str = "URL_EXPIRED";
/// Multipart requests must carry a header that forces a CORS preflight.
pub const CSRF_REQUIRED: &str = "CSRF_PREVENTED";
