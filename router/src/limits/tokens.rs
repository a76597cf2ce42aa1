//! Counts a document's lexical tokens and bracket nesting before it is parsed, so a huge or
//! deeply nested document is refused after one linear scan that stops at the limit (the parser
//! is recursive: nesting must be bounded before it runs).

/// What the scan found: tokens (up to the limit + 1) and the deepest bracket nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pub tokens: u32,
    pub nesting: u32,
}

/// Scans `source`, stopping once `max_tokens` is passed or `max_nesting` is exceeded.
pub fn scan(source: &str, max_tokens: u32, max_nesting: u32) -> Scan {
    let bytes = source.as_bytes();
    let (mut i, mut tokens, mut depth, mut nesting) = (0, 0u32, 0u32, 0u32);
    while i < bytes.len() && tokens <= max_tokens && nesting <= max_nesting {
        let b = bytes[i];
        i = match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i + 1,
            b'#' => bytes[i..].iter().position(|&c| c == b'\n' || c == b'\r').map_or(bytes.len(), |p| i + p),
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                tokens += 1;
                block_string_end(bytes, i + 3)
            }
            b'"' => {
                tokens += 1;
                string_end(bytes, i + 1)
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                tokens += 1;
                i + 3
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => {
                tokens += 1;
                word_end(bytes, i + 1)
            }
            _ => {
                tokens += 1;
                match b {
                    b'{' | b'(' | b'[' => {
                        depth += 1;
                        nesting = nesting.max(depth);
                    }
                    b'}' | b')' | b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                // Any other byte (punctuators, or a character the parser will refuse) is one
                // token; skip the rest of a multi-byte character.
                i + source[i..].chars().next().map_or(1, char::len_utf8)
            }
        };
    }
    Scan { tokens, nesting }
}

/// Names and numbers (with `.`, exponents and signs) run until a byte that cannot continue them.
fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'+' | b'-'))
    {
        i += 1;
    }
    i
}

fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' | b'\n' | b'\r' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn block_string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn counts_tokens_as_the_graphql_lexer_does() {
        let doc = r#"query Q($id: ID! = "a,b") { # comment { not counted
  user(id: $id, n: -1.5e3) { ...F name @include(if: true) } }
fragment F on User { bio(format: """block " ""\""" x""") }"#;
        // query Q ( $ id : ID ! = "a,b" ) {  user ( id : $ id n : -1.5e3 ) { ... F name @ include
        // ( if : true ) } }  fragment F on User { bio ( format : """...""" ) }
        assert_eq!(scan(doc, 1000, 100), super::Scan { tokens: 47, nesting: 3 });
    }

    #[test]
    fn stops_at_the_limits() {
        let big = "{ a ".repeat(10_000);
        assert_eq!(scan(&big, 100, 100_000).tokens, 101);
        assert_eq!(scan(&big, 1_000_000, 64).nesting, 65);
        assert_eq!(scan("{ ünïcödé }", 100, 10).tokens, 9, "each non-ASCII character is one token");
    }
}
