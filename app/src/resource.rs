//! The pages' resources. Their value crosses from the server to the page twice: in the
//! document, for hydration, and in a server function's response, when it loads again.
//! leptos's default codec reads the first with `serde_json::from_str` and server functions read
//! the second with `serde_json::from_slice`. Those are two readers, so the wasm carried two
//! copies of every result type's deserializer. This codec reads the document's copy through
//! `from_slice` too: one copy, and the same JSON.

use leptos::server::codee::{Decoder, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON, read by the reader server functions use.
pub struct JsonCodec;

impl<T: Serialize> Encoder<T> for JsonCodec {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, Self::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for JsonCodec {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, Self::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// A resource whose value is read with [`JsonCodec`].
pub type Resource<T> = leptos::prelude::Resource<T, JsonCodec>;

/// Creates a [`Resource`] that loads `fetcher(source())` again whenever `source()` changes.
#[track_caller]
pub fn resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        let value: Result<Vec<(String, Option<u32>)>, String> = Ok(vec![("a\"<b".into(), Some(3)), ("c".into(), None)]);
        let text = JsonCodec::encode(&value).unwrap();
        assert_eq!(text, r#"{"Ok":[["a\"<b",3],["c",null]]}"#);
        let back: Result<Vec<(String, Option<u32>)>, String> = JsonCodec::decode(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn refuses_text_that_is_not_json() {
        assert!(<JsonCodec as Decoder<u32>>::decode("{").is_err());
    }
}
