//! Any text as a provisioning template: parsing, rendering strictly and for a sample machine,
//! within small limits, must answer (text or an error with its place), never crash or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pangea::provisioner::gotemplate::{Limits, Template};
use std::time::Duration;

fuzz_target!(|text: &str| {
    let Ok(template) = Template::parse(text) else { return };
    let data = serde_json::json!({
        "hostname": "node1", "n": 3, "list": ["a", "b"], "map": {"k": "v", "z": 1.5}, "empty": [],
        "request": {"query": {"mac": "52:54:00:00:00:01"}, "raw_query": "mac=52:54:00:00:00:01"},
    });
    let limits = Limits { steps: 20_000, bytes: 64 << 10, time: Duration::from_millis(200) };
    if let Ok(out) = template.render_within(&data, limits) {
        assert!(out.len() <= limits.bytes + text.len(), "output over its limit");
    }
    let _ = template.check(&data);
});
