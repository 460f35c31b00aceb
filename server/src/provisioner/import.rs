//! Matchbox data directories in and out: `profiles/`, `groups/`, `ignition/`, `generic/` (and
//! `assets/`, left in place or copied). An import is checked whole first: every finding names
//! its file; errors stop it, warnings (what Matchbox itself would serve as 404) do not.

use super::check_template;
use super::model::{Catalog, Group, Profile, TemplateFile, TemplateKind};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// Largest file an import reads: configs and templates are small.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// The file, relative to the imported folder (`groups/node-0001.json`).
    pub file: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// What an import would write, and what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct ImportPlan {
    pub source: String,
    pub catalog: Catalog,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    pub profiles: usize,
    pub groups: usize,
    pub templates: usize,
    pub warnings: Vec<Finding>,
}

/// The files of `dir/sub`, sorted by name; a missing folder is empty.
fn files_in(dir: &Path, sub: &str, plan: &mut ImportPlan) -> Vec<(String, String)> {
    let folder = dir.join(sub);
    let Ok(entries) = std::fs::read_dir(&folder) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let file = format!("{sub}/{name}");
        let path = folder.join(&name);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                plan.errors.push(Finding { file, message: format!("larger than {MAX_FILE_BYTES} bytes; is this a config?") });
                continue;
            }
            Err(e) => {
                plan.errors.push(Finding { file, message: format!("cannot read it: {e}") });
                continue;
            }
            Ok(_) => {}
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => out.push((name, text)),
            Err(e) => plan.errors.push(Finding { file, message: format!("cannot read it as UTF-8 text: {e}") }),
        }
    }
    out
}

/// A JSON file's id must be its file name without `.json`: Matchbox finds profiles by file name.
fn check_file_name(file: &str, name: &str, id: &str) -> Result<(), String> {
    match name.strip_suffix(".json") {
        Some(stem) if stem == id => Ok(()),
        Some(stem) => Err(format!("its id is \"{id}\" but the file is named {stem}.json; rename one so they agree")),
        None => Err(format!("{file} is not a .json file")),
    }
}

/// Reads and checks a Matchbox data directory; writes nothing.
pub fn plan(dir: &Path) -> ImportPlan {
    let mut plan = ImportPlan { source: dir.display().to_string(), ..Default::default() };
    if !dir.is_dir() {
        plan.errors.push(Finding { file: plan.source.clone(), message: "is not a folder".into() });
        return plan;
    }
    let known = ["profiles", "groups", "ignition", "generic", "assets", "cloud"];
    if !known.iter().any(|k| dir.join(k).is_dir()) {
        plan.errors.push(Finding {
            file: plan.source.clone(),
            message: "holds none of profiles/, groups/, ignition/, generic/: is it a Matchbox data directory?".into(),
        });
    }
    for (name, text) in files_in(dir, "profiles", &mut plan) {
        let file = format!("profiles/{name}");
        let parsed = serde_json::from_str::<Profile>(&text)
            .map_err(|e| format!("not a profile: {e}"))
            .and_then(|p| check_file_name(&file, &name, &p.id).and(p.check()).map(|_| p));
        match parsed {
            Ok(p) => plan.catalog.profiles.push(p),
            Err(message) => plan.errors.push(Finding { file, message }),
        }
    }
    for (name, text) in files_in(dir, "groups", &mut plan) {
        let file = format!("groups/{name}");
        let parsed = serde_json::from_str::<Group>(&text)
            .map_err(|e| format!("not a group: {e}"))
            .and_then(|g| check_file_name(&file, &name, &g.id).and_then(|_| g.normalize()));
        match parsed {
            Ok(g) => plan.catalog.groups.push(g),
            Err(message) => plan.errors.push(Finding { file, message }),
        }
    }
    for (sub, kind) in [("ignition", TemplateKind::Ignition), ("generic", TemplateKind::Generic)] {
        for (name, content) in files_in(dir, sub, &mut plan) {
            let template = TemplateFile { kind, id: name.clone(), content };
            match check_template(&template) {
                Ok(()) => plan.catalog.templates.push(template),
                Err(message) => plan.errors.push(Finding { file: format!("{sub}/{name}"), message }),
            }
        }
    }
    if dir.join("cloud").is_dir() {
        plan.warnings.push(Finding {
            file: "cloud/".into(),
            message: "cloud-config templates are not imported: Matchbox deprecated them and Pangea serves none".into(),
        });
    }
    cross_check(&mut plan);
    plan
}

/// References between the parts: what Matchbox would answer 404 for is a warning.
fn cross_check(plan: &mut ImportPlan) {
    let profiles: BTreeSet<&str> = plan.catalog.profiles.iter().map(|p| p.id.as_str()).collect();
    let templates: BTreeSet<(TemplateKind, &str)> =
        plan.catalog.templates.iter().map(|t| (t.kind, t.id.as_str())).collect();
    for g in &plan.catalog.groups {
        if !profiles.contains(g.profile.as_str()) {
            plan.warnings.push(Finding {
                file: format!("groups/{}.json", g.id),
                message: format!(
                    "names profile \"{}\", which is not in profiles/: its machines get 404 on /ipxe, /grub and /ignition until it exists",
                    g.profile
                ),
            });
        }
    }
    for p in &plan.catalog.profiles {
        for (kind, id) in [(TemplateKind::Ignition, &p.ignition_id), (TemplateKind::Generic, &p.generic_id)] {
            if !id.is_empty() && !templates.contains(&(kind, id.as_str())) {
                plan.warnings.push(Finding {
                    file: format!("profiles/{}.json", p.id),
                    message: format!("names {} template \"{id}\", which is not in {}/", kind.as_str(), kind.as_str()),
                });
            }
        }
    }
    let mut seen = BTreeSet::new();
    for g in &plan.catalog.groups {
        if !seen.insert(g.selector.clone()) {
            plan.warnings.push(Finding {
                file: format!("groups/{}.json", g.id),
                message: "has the same selectors as another group: the one whose id sorts first wins".into(),
            });
        }
    }
}

/// Copies `dir/assets` into `target`, keeping files already there; returns how many it copied.
pub fn copy_assets(dir: &Path, target: &Path) -> std::io::Result<usize> {
    fn walk(from: &Path, to: &Path, copied: &mut usize) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let (source, dest) = (entry.path(), to.join(entry.file_name()));
            if entry.file_type()?.is_dir() {
                walk(&source, &dest, copied)?;
            } else if !dest.exists() {
                std::fs::copy(&source, &dest)?;
                *copied += 1;
            }
        }
        Ok(())
    }
    let mut copied = 0;
    let source = dir.join("assets");
    if source.is_dir() {
        walk(&source, target, &mut copied)?;
    }
    Ok(copied)
}

/// Writes `catalog` as a Matchbox data directory into `dir`, which must be empty or new.
pub fn export(catalog: &Catalog, dir: &Path) -> Result<usize, String> {
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| e.to_string())?.next().is_some() {
        return Err(format!("{} is not empty: export into a new or empty folder", dir.display()));
    }
    let write = |sub: &str, name: &str, text: &str| -> Result<(), String> {
        let folder = dir.join(sub);
        std::fs::create_dir_all(&folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        std::fs::write(folder.join(name), text).map_err(|e| format!("cannot write {sub}/{name}: {e}"))
    };
    let mut written = 0;
    for p in &catalog.profiles {
        write("profiles", &format!("{}.json", p.id), &pretty(p)?)?;
        written += 1;
    }
    for g in &catalog.groups {
        write("groups", &format!("{}.json", g.id), &pretty(g)?)?;
        written += 1;
    }
    for t in &catalog.templates {
        write(t.kind.as_str(), &t.id, &t.content)?;
        written += 1;
    }
    Ok(written)
}

fn pretty(value: &impl Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map(|s| s + "\n").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn every_broken_file_is_named_and_dangling_references_are_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "profiles/ok.json", r#"{"id":"ok","boot":{"kernel":"/k"},"ignition_id":"ok.yaml"}"#);
        write(d, "profiles/broken.json", r#"{"id":"broken","#);
        write(d, "profiles/renamed.json", r#"{"id":"other"}"#);
        write(d, "groups/g.json", r#"{"id":"g","profile":"missing","selector":{"mac":"52:54:00:00:00:01"}}"#);
        write(d, "groups/badmac.json", r#"{"id":"badmac","profile":"ok","selector":{"mac":"zz"}}"#);
        write(d, "ignition/bad.yaml.tmpl", "variant: fcos\n{{if .x}}\n");
        write(d, "ignition/bad.ign", r#"{"ignition":{"version":"9.9.9"}}"#);
        let plan = plan(d);
        let files: Vec<&str> = plan.errors.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(
            files,
            ["profiles/broken.json", "profiles/renamed.json", "groups/badmac.json", "ignition/bad.ign", "ignition/bad.yaml.tmpl"],
            "{:#?}",
            plan.errors
        );
        assert!(plan.errors[1].message.contains("file is named renamed.json"));
        assert!(plan.errors[2].message.contains("\"zz\" is not a MAC address"));
        assert!(plan.errors[4].message.contains("line 2"), "{}", plan.errors[4]);
        assert!(plan.warnings.iter().any(|w| w.file == "groups/g.json" && w.message.contains("\"missing\"")));
        assert!(plan.warnings.iter().any(|w| w.file == "profiles/ok.json" && w.message.contains("ok.yaml")));
    }

    #[test]
    fn an_export_imports_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "profiles/p.json", r#"{"id":"p","name":"P","boot":{"kernel":"/k","initrd":["/i"],"args":["a=1"]},"generic_id":"g.tmpl"}"#);
        write(dir.path(), "groups/g.json", r#"{"id":"g","profile":"p","selector":{"mac":"52-54-00-00-00-01"},"metadata":{"n":1}}"#);
        write(dir.path(), "generic/g.tmpl", "x={{.n}}\n");
        let first = plan(dir.path());
        assert!(first.errors.is_empty() && first.warnings.is_empty(), "{:?} {:?}", first.errors, first.warnings);
        let out = tempfile::tempdir().unwrap();
        assert_eq!(export(&first.catalog, out.path()).unwrap(), 3);
        let again = plan(out.path());
        assert_eq!(again.catalog.profiles, first.catalog.profiles);
        assert_eq!(again.catalog.groups, first.catalog.groups);
        assert_eq!(again.catalog.templates, first.catalog.templates);
        assert!(export(&first.catalog, out.path()).unwrap_err().contains("not empty"));
    }
}
