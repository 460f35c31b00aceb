//! Any text as a Butane config: translated to Ignition or refused with a reason, never a crash,
//! and whatever is translated is a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pangea::provisioner::butane;

fuzz_target!(|text: &str| {
    if let Ok(config) = butane::translate(text) {
        let json: serde_json::Value = serde_json::from_str(&config.to_string()).expect("Ignition is JSON");
        assert!(json.is_object());
    }
});
