//! MAC addresses, parsed exactly as Matchbox (Go's `net.ParseMAC`) parses them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A hardware address of 6, 8 or 20 bytes (EUI-48, EUI-64, IP-over-InfiniBand).
///
/// Accepts the colon (`52:54:00:00:00:01`), hyphen (`52-54-00-00-00-01`) and dotted
/// (`5254.0000.0001`) forms in any case, and always displays the lowercase colon form, which is
/// how it is stored and matched.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(Vec<u8>);

/// Why a string is not a MAC address; the message quotes the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a MAC address: use six pairs of hex digits such as 52:54:00:12:34:56 (hyphens or the dotted 5254.0012.3456 form work too)"
)]
pub struct InvalidMac(pub String);

const VALID_LENGTHS: [usize; 3] = [6, 8, 20];

impl MacAddr {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn hex_pair(s: &[u8]) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(digit(s[0])? << 4 | digit(s[1])?)
}

impl FromStr for MacAddr {
    type Err = InvalidMac;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidMac(input.to_string());
        let s = input.as_bytes();
        if s.len() < 14 {
            return Err(invalid());
        }
        let bytes = if s[2] == b':' || s[2] == b'-' {
            let sep = s[2];
            if !(s.len() + 1).is_multiple_of(3) {
                return Err(invalid());
            }
            let n = (s.len() + 1) / 3;
            (0..n)
                .map(|i| {
                    let x = i * 3;
                    if i + 1 < n && s[x + 2] != sep {
                        return None;
                    }
                    hex_pair(&s[x..x + 2])
                })
                .collect::<Option<Vec<u8>>>()
        } else if s[4] == b'.' {
            if !(s.len() + 1).is_multiple_of(5) {
                return Err(invalid());
            }
            let groups = (s.len() + 1) / 5;
            let mut out = Vec::with_capacity(groups * 2);
            for i in 0..groups {
                let x = i * 5;
                if i + 1 < groups && s[x + 4] != b'.' {
                    return Err(invalid());
                }
                out.push(hex_pair(&s[x..x + 2]).ok_or_else(invalid)?);
                out.push(hex_pair(&s[x + 2..x + 4]).ok_or_else(invalid)?);
            }
            Some(out)
        } else {
            None
        };
        match bytes {
            Some(b) if VALID_LENGTHS.contains(&b.len()) => Ok(MacAddr(b)),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl TryFrom<String> for MacAddr {
    type Error = InvalidMac;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<MacAddr> for String {
    fn from(mac: MacAddr) -> String {
        mac.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_every_form_matchbox_accepts() {
        for form in [
            "52:54:00:00:00:01",
            "52-54-00-00-00-01",
            "5254.0000.0001",
            "52:54:00:00:00:01".to_uppercase().as_str(),
            "5254.0000.0001".to_uppercase().as_str(),
        ] {
            assert_eq!(form.parse::<MacAddr>().unwrap().to_string(), "52:54:00:00:00:01", "{form}");
        }
        assert_eq!("02:00:5e:10:00:00:00:01".parse::<MacAddr>().unwrap().bytes().len(), 8);
        assert_eq!("0000.0000.fe80.0000.0000.0000.0200.5e10.0000.0001".parse::<MacAddr>().unwrap().bytes().len(), 20);
    }

    #[test]
    fn rejects_what_matchbox_rejects_and_quotes_it() {
        for bad in [
            "zz",
            "",
            "52:54:00:00:00",
            "52:54:00:00:00:0g",
            "52:54-00:00:00:01",
            "52:54:00:00:00:01:",
            "5254.0000.00011",
            "52:54:00:00:00:00:00",
            " 52:54:00:00:00:01",
            "52:54:00:00:00:01 ",
            "5254:0000:0001",
        ] {
            let err = bad.parse::<MacAddr>().unwrap_err();
            assert!(err.to_string().contains(&format!("\"{bad}\"")), "{err}");
        }
    }

    proptest! {
        #[test]
        fn any_six_bytes_round_trip_through_every_form(bytes in proptest::array::uniform6(any::<u8>()), upper in any::<bool>()) {
            let colon = bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            let hyphen = colon.replace(':', "-");
            let dotted = bytes.chunks(2).map(|c| format!("{:02x}{:02x}", c[0], c[1])).collect::<Vec<_>>().join(".");
            for form in [&colon, &hyphen, &dotted] {
                let form = if upper { form.to_uppercase() } else { form.clone() };
                let mac: MacAddr = form.parse().unwrap();
                prop_assert_eq!(mac.bytes(), &bytes[..]);
                prop_assert_eq!(mac.to_string(), colon.clone());
            }
        }

        #[test]
        fn display_is_a_fixed_point(s in "[0-9a-fA-F:.-]{0,40}") {
            if let Ok(mac) = s.parse::<MacAddr>() {
                prop_assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
            }
        }

        #[test]
        fn never_panics_on_arbitrary_input(s in ".{0,64}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
