//! The provisioner: Matchbox-compatible network boot. Profiles, groups and templates live in the
//! database; the boot listener serves iPXE scripts, GRUB configs, Ignition, generic configs and
//! metadata from an in-memory index.

pub mod gotemplate;
