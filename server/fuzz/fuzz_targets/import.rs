//! Any text as a machines import (CSV, Tectonic and Typhoon tfvars, and the guess between
//! them) and as each kind of Matchbox data file: read or refused in words, never a crash.
#![no_main]

use app::machines::ImportFormat;
use libfuzzer_sys::fuzz_target;
use pangea::machines::import::parse_import;
use pangea::provisioner::import::plan_files;
use std::collections::BTreeMap;

fuzz_target!(|text: &str| {
    for format in [ImportFormat::Auto, ImportFormat::Csv, ImportFormat::Tectonic, ImportFormat::Typhoon] {
        if let Ok((_, lines)) = parse_import(format, text) {
            assert!(!lines.is_empty(), "an import read as no machines must be refused");
        }
    }
    for file in ["profiles/p.json", "groups/g.json", "ignition/i.yaml", "ignition/r.ign", "generic/t"] {
        let files = BTreeMap::from([(file.to_string(), text.to_string())]);
        let _ = plan_files("fuzz", &files);
    }
});
