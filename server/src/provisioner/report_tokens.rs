//! Boot report tokens. Every Ignition or generic config rendered for a request that names a MAC
//! may use `{{.report_token}}`: a token only that machine's config holds, valid for the 6-hour
//! window it was made in and the next. A machine's report of `installed` or `failed`
//! (`/metadata?stage=…`, or a config fetched with `os=installed`) moves its state only with
//! `report_token=` that token; without it the report is recorded as unverified, since anyone on
//! the boot network can send one. Matchbox's answers are unchanged: the token is a template
//! variable, never added to `/metadata` or to any config that does not use it.
//!
//! A token is an HMAC, under a key derived from the audit chain's key (the same on every
//! replica), of the MAC and the window; nothing is stored.

use crate::secrets::ChainKey;
use time::OffsetDateTime;

/// The query label a report presents its token in; never kept with the event.
pub const LABEL: &str = "report_token";

/// What a person previewing a config sees where a machine's token goes (never a real one).
pub const SHOWN: &str = "(this machine's report token)";

/// How long one window lasts; a token is valid in its window and the next.
const WINDOW_SECONDS: i64 = 6 * 3600;

#[derive(Debug, Clone)]
pub struct ReportTokens {
    key: ChainKey,
}

/// A MAC as boot requests send it (`52-54-…` or `52:54:…`, any case), in one form.
fn normal(mac: &str) -> String {
    mac.trim().to_ascii_lowercase().replace('-', ":")
}

impl ReportTokens {
    pub fn new(chain_key: &ChainKey) -> ReportTokens {
        ReportTokens { key: ChainKey::from_bytes(chain_key.mac(b"pangea boot report tokens v1")) }
    }

    fn in_window(&self, mac: &str, window: i64) -> String {
        let mac = self.key.mac(format!("{}|{window}", normal(mac)).as_bytes());
        format!("{window:x}.{}", hex::encode(&mac[..16]))
    }

    /// The token of `mac`'s configs rendered at `at`.
    pub fn token(&self, mac: &str, at: OffsetDateTime) -> String {
        self.in_window(mac, at.unix_timestamp().div_euclid(WINDOW_SECONDS))
    }

    /// Whether `token` is `mac`'s, made in the window of `at` or the one before.
    pub fn verify(&self, mac: &str, token: &str, at: OffsetDateTime) -> bool {
        let Some(window) = token.split_once('.').and_then(|(w, _)| i64::from_str_radix(w, 16).ok()) else {
            return false;
        };
        let now = at.unix_timestamp().div_euclid(WINDOW_SECONDS);
        if window != now && window != now - 1 {
            return false;
        }
        let expected = self.in_window(mac, window);
        // Compared in constant time: the answer says nothing about how much of it was right.
        expected.len() == token.len()
            && expected.bytes().zip(token.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> ReportTokens {
        ReportTokens::new(&ChainKey::from_bytes([7; 32]))
    }

    #[test]
    fn a_token_verifies_for_its_machine_in_its_window_and_the_next_only() {
        let (tokens, mac) = (tokens(), "52:54:00:12:34:56");
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let token = tokens.token(mac, at);
        assert!(tokens.verify(mac, &token, at));
        assert!(tokens.verify("52-54-00-12-34-56", &token, at), "either spelling of the MAC");
        assert!(tokens.verify(mac, &token, at + time::Duration::hours(6)), "the next window");
        assert!(!tokens.verify(mac, &token, at + time::Duration::hours(12)), "expired");
        assert!(!tokens.verify(mac, &token, at - time::Duration::hours(6)), "not before it was made");
        assert!(!tokens.verify("52:54:00:12:34:57", &token, at), "another machine's");
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 1.., if token.ends_with('0') { "1" } else { "0" });
        assert!(!tokens.verify(mac, &forged, at));
        assert!(!tokens.verify(mac, "", at) && !tokens.verify(mac, "zz.00", at));
        let other_key = ReportTokens::new(&ChainKey::from_bytes([8; 32]));
        assert!(!other_key.verify(mac, &token, at), "another server's");
    }
}
