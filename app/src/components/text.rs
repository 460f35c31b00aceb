//! Text as pages and server-drawn views show it.

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A stored RFC 3339 time as people read it in a table: `2026-11-25 14:30`.
pub fn short_time(at: &str) -> String {
    at.get(..16).unwrap_or(at).replace('T', " ")
}

/// `text` with its first letter in upper case: "power on" → "Power on".
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_times_shortened() {
        assert_eq!(urlencode("rack=r1 a/b"), "rack%3Dr1%20a%2Fb");
        assert_eq!(short_time("2026-11-25T14:30:05.123456Z"), "2026-11-25 14:30");
        assert_eq!(short_time("bad"), "bad");
    }
}
