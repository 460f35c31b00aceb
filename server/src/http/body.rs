//! Reading the body of an answer from somewhere else (a linked Prometheus, the IdP) with a cap,
//! as it arrives: whoever answers cannot make Pangea hold more than the caller allows.

/// Why an answer's body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Over `limit` bytes: what it said it was (or had sent when it went over).
    TooLarge {
        limit: usize,
        seen: u64,
    },
    Read(reqwest::Error),
}

impl BodyError {
    /// In words, for `what` at `url`.
    pub fn say(&self, what: &str, url: &str) -> String {
        match self {
            BodyError::TooLarge { limit, seen } => format!(
                "{what} at {url} answered with more than {} ({seen} bytes or more); Pangea reads at most that much \
                 of an answer{}.",
                in_units(*limit),
                if *limit >= 1 << 20 { ": narrow the query" } else { "" }
            ),
            BodyError::Read(e) => format!("{what} at {url} stopped answering: {e}."),
        }
    }
}

fn in_units(bytes: usize) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{} KiB", bytes >> 10) }
}

/// A response's body, `limit` bytes at most, read as it arrives.
pub async fn read_within(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if let Some(length) = response.content_length().filter(|l| *l > limit as u64) {
        return Err(BodyError::TooLarge { limit, seen: length });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit, seen: (body.len() + chunk.len()) as u64 });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
