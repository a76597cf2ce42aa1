//! What a file is: its content type from its first bytes (the client's claim is checked against
//! it, never trusted), safe names, content-type allow-lists, and `Content-Disposition`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use pyairtable_kit::{Error, Result};

use crate::codes;

/// How many leading bytes decide the content type.
pub const SNIFF_BYTES: usize = 8192;
/// What unknown binary content is.
pub const OCTET_STREAM: &str = "application/octet-stream";
const TEXT: &str = "text/plain";
/// Declared types that are text by nature (served as text/plain when the bytes are text).
const TEXT_LIKE: [&str; 6] = [
    "application/json",
    "application/xml",
    "application/csv",
    "image/svg+xml",
    "application/x-yaml",
    "application/yaml",
];

/// The content type of a file, from its first bytes (`head`; `complete` when that is all of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub mime: String,
    /// A program (ELF, PE, Mach-O, DEX, ...): refused unless a workspace allows it by name.
    pub executable: bool,
}

pub fn detect(head: &[u8]) -> Detected {
    if let Some(kind) = infer::get(head) {
        // Certificates are filed with applications; they are not programs.
        let executable = kind.matcher_type() == infer::MatcherType::App && !kind.mime_type().contains("x509");
        return Detected { mime: kind.mime_type().to_owned(), executable };
    }
    Detected { mime: if looks_like_text(head) { TEXT } else { OCTET_STREAM }.to_owned(), executable: false }
}

/// UTF-8 without NULs (a character cut at the end of the sniffed prefix is fine).
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// Lower-cased `type/subtype` without parameters, or BAD_USER_INPUT.
pub fn parse_content_type(field: &str, raw: &str) -> Result<String> {
    let essence = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let valid = essence.split_once('/').is_some_and(|(t, s)| token(t) && token(s)) && essence.len() <= 127;
    if !valid {
        return Err(Error::bad_input(field, format!("{field} is not a content type (type/subtype)")));
    }
    Ok(match essence.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".into(),
        _ => essence,
    })
}

fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// Checks the bytes against the client's claim; returns the type the file is stored as.
pub fn reconcile(declared: &str, detected: &Detected) -> Result<String> {
    let agrees = declared == detected.mime
        || declared == OCTET_STREAM
        || (detected.mime == TEXT && (declared.starts_with("text/") || TEXT_LIKE.contains(&declared)))
        || (detected.mime == OCTET_STREAM
            && !infer::is_mime_supported(declared)
            && !declared.starts_with("text/"));
    if !agrees {
        return Err(Error::Refused {
            code: codes::UNSUPPORTED_MEDIA_TYPE,
            message: format!("the content is {}, not {declared}", detected.mime),
        });
    }
    Ok(detected.mime.clone())
}

/// Whether a workspace's allow-list (`None`: the default) takes `detected`.
pub fn allowed(allow_list: Option<&[String]>, detected: &Detected) -> Result<()> {
    let ok = match allow_list {
        None => !detected.executable,
        Some(patterns) => patterns.iter().any(|p| matches(p, &detected.mime)),
    };
    if ok {
        return Ok(());
    }
    let why =
        if allow_list.is_none() { "programs are not accepted" } else { "this workspace does not accept it" };
    Err(Error::Refused { code: codes::UNSUPPORTED_MEDIA_TYPE, message: format!("{}: {why}", detected.mime) })
}

fn matches(pattern: &str, mime: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(kind) => mime.split('/').next() == Some(kind),
        None => pattern == mime,
    }
}

/// Validates an allow-list: `type/subtype` or `type/*`, at most 100.
pub fn parse_allow_list(raw: &[String]) -> Result<Vec<String>> {
    if raw.len() > 100 {
        return Err(Error::bad_input("contentTypes", "at most 100 content types"));
    }
    let mut list = Vec::with_capacity(raw.len());
    for entry in raw {
        let parsed = match entry.trim().strip_suffix("/*") {
            Some(kind) if token(kind) => format!("{}/*", kind.to_ascii_lowercase()),
            _ => parse_content_type("contentTypes", entry)?,
        };
        if !list.contains(&parsed) {
            list.push(parsed);
        }
    }
    Ok(list)
}

/// A file name: trimmed, 1..=255 characters, no path (`/`, `\`, `.`, `..`) and no control
/// characters. Refused, not rewritten: the client learns why.
pub fn parse_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(Error::bad_input("name", "a file name has 1 to 255 characters"));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(Error::bad_input("name", "a file name may not contain a path (/, \\, . or ..)"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::bad_input("name", "a file name may not contain control characters"));
    }
    Ok(name.to_owned())
}

/// RFC 5987 `attr-char`: what may stay unescaped in `filename*`.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="<ASCII stand-in>"; filename*=UTF-8''<percent-encoded>` (RFC 6266):
/// old clients get a harmless ASCII name, others the exact one; nothing in a name can break out
/// of the header.
pub fn content_disposition(name: &str) -> String {
    let fallback: String =
        name.chars()
            .map(|c| {
                if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' { c } else { '_' }
            })
            .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{}", utf8_percent_encode(name, ATTR))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const ELF: &[u8] = &[
        0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0x38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0,
    ];

    #[test]
    fn bytes_decide_the_type() {
        assert_eq!(detect(PNG), Detected { mime: "image/png".into(), executable: false });
        assert!(detect(ELF).executable);
        assert!(detect(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff").executable);
        assert_eq!(detect("héllo, world".as_bytes()).mime, "text/plain");
        assert_eq!(detect(&"é".as_bytes()[..1]).mime, "text/plain", "a cut character is still text");
        assert_eq!(detect(b"\0\x01\x02garbage").mime, OCTET_STREAM);
    }

    #[test]
    fn the_claim_must_agree_with_the_bytes() {
        let png = detect(PNG);
        assert_eq!(reconcile("image/png", &png).expect("agrees"), "image/png");
        assert_eq!(reconcile(OCTET_STREAM, &png).expect("unknown claim"), "image/png");
        let err = reconcile("image/png", &detect(ELF)).expect_err("an executable is no png");
        assert_eq!(err.code(), "UNSUPPORTED_MEDIA_TYPE");
        assert!(reconcile("text/csv", &detect(b"a,b\n1,2\n")).is_ok());
        assert!(reconcile("image/png", &detect(b"plain text")).is_err());
        assert!(reconcile("application/x-custom", &detect(b"\0\x01")).is_ok());
        assert!(reconcile("application/pdf", &detect(b"\0\x01")).is_err(), "a real PDF is recognised");
    }

    #[test]
    fn allow_lists_take_wildcards_and_refuse_programs_by_default() {
        let elf = detect(ELF);
        assert!(allowed(None, &detect(PNG)).is_ok());
        assert_eq!(allowed(None, &elf).expect_err("program").code(), "UNSUPPORTED_MEDIA_TYPE");
        let list = parse_allow_list(&["Image/*".into(), "application/pdf".into()]).expect("valid");
        assert_eq!(list, ["image/*", "application/pdf"]);
        assert!(allowed(Some(&list), &detect(PNG)).is_ok());
        assert!(allowed(Some(&list), &detect(b"text")).is_err());
        assert!(parse_allow_list(&["nonsense".into()]).is_err());
    }

    #[test]
    fn names_are_names_not_paths() {
        assert_eq!(parse_name("  report 2026.pdf ").expect("valid"), "report 2026.pdf");
        for bad in ["../../etc/passwd", "a/b", "a\\b", "..", ".", "", "a\u{0}b", "line\nbreak"] {
            assert_eq!(parse_name(bad).expect_err(bad).code(), "BAD_USER_INPUT", "{bad:?}");
        }
        assert!(parse_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn content_disposition_survives_any_name() {
        assert_eq!(
            content_disposition("résumé \"final\"; v2.pdf"),
            "attachment; filename=\"r_sum_ _final__ v2.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B%20v2.pdf"
        );
        let header = content_disposition("a\r\nSet-Cookie: x=1");
        assert!(!header.contains('\r') && !header.contains('\n'));
        assert!(http_header_ok(&header));
    }

    fn http_header_ok(value: &str) -> bool {
        axum::http::HeaderValue::from_str(value).is_ok()
    }
}
