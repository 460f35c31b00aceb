//! Matchbox data directories in and out: `profiles/`, `groups/`, `ignition/`, `generic/` (and
//! `assets/`, left in place or copied). An import is checked whole first: every finding names
//! its file; errors stop it, warnings (what Matchbox itself would serve as 404) do not.

use super::check_template;
pub use app::provisioning::Finding;
use app::provisioning::{Catalog, Group, Profile, TemplateFile, TemplateKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Largest file an import reads: configs and templates are small.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What an import would write, and what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct ImportPlan {
    pub source: String,
    pub catalog: Catalog,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// A JSON file's id must be its file name without `.json`: Matchbox finds profiles by file name.
fn check_file_name(file: &str, name: &str, id: &str) -> Result<(), String> {
    match name.strip_suffix(".json") {
        Some(stem) if stem == id => Ok(()),
        Some(stem) => Err(format!("its id is \"{id}\" but the file is named {stem}.json; rename one so they agree")),
        None => Err(format!("{file} is not a .json file")),
    }
}

/// The folders of a Matchbox data directory that hold configs.
const FOLDERS: [&str; 4] = ["profiles", "groups", "ignition", "generic"];

/// Reads the config files of a Matchbox data directory, by path relative to it
/// (`groups/node-0001.json`); a file that cannot be read is a finding.
pub fn read_dir(dir: &Path) -> (BTreeMap<String, String>, Vec<Finding>) {
    let mut files = BTreeMap::new();
    let mut errors = Vec::new();
    for sub in FOLDERS {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let file = format!("{sub}/{name}");
            match std::fs::metadata(entry.path()) {
                Ok(m) if m.len() > MAX_FILE_BYTES => errors
                    .push(Finding { file, message: format!("larger than {MAX_FILE_BYTES} bytes; is this a config?") }),
                Err(e) => errors.push(Finding { file, message: format!("cannot read it: {e}") }),
                Ok(_) => match std::fs::read_to_string(entry.path()) {
                    Ok(text) => {
                        files.insert(file, text);
                    }
                    Err(e) => errors.push(Finding { file, message: format!("cannot read it as UTF-8 text: {e}") }),
                },
            }
        }
    }
    (files, errors)
}

/// Reads and checks a Matchbox data directory; writes nothing.
pub fn plan(dir: &Path) -> ImportPlan {
    let source = dir.display().to_string();
    if !dir.is_dir() {
        return ImportPlan {
            errors: vec![Finding { file: source.clone(), message: "is not a folder".into() }],
            source,
            ..Default::default()
        };
    }
    let (files, unreadable) = read_dir(dir);
    let mut plan = plan_files(&source, &files);
    plan.errors.extend(unreadable);
    plan.errors.sort_by(|a, b| a.file.cmp(&b.file));
    if dir.join("cloud").is_dir() {
        plan.warnings.push(Finding {
            file: "cloud/".into(),
            message: "cloud-config templates are not imported: Matchbox deprecated them and Pangea serves none".into(),
        });
    }
    plan
}

/// Checks the files of a Matchbox data directory, by relative path (as [`read_dir`] gives them,
/// or as an upload sends them); writes nothing.
pub fn plan_files(source: &str, files: &BTreeMap<String, String>) -> ImportPlan {
    let mut plan = ImportPlan { source: source.to_string(), ..Default::default() };
    if !files.keys().any(|f| FOLDERS.iter().any(|d| f.starts_with(&format!("{d}/")))) {
        plan.errors.push(Finding {
            file: plan.source.clone(),
            message: "holds none of profiles/, groups/, ignition/, generic/: is it a Matchbox data directory?".into(),
        });
    }
    for (file, text) in files {
        let Some((sub, name)) = file.split_once('/') else {
            plan.errors.push(Finding {
                file: file.clone(),
                message: "is not inside profiles/, groups/, ignition/ or generic/".into(),
            });
            continue;
        };
        if text.len() as u64 > MAX_FILE_BYTES {
            plan.errors.push(Finding {
                file: file.clone(),
                message: format!("larger than {MAX_FILE_BYTES} bytes; is this a config?"),
            });
            continue;
        }
        let checked = match sub {
            "profiles" => serde_json::from_str::<Profile>(text)
                .map_err(|e| format!("not a profile: {e}"))
                .and_then(|p| check_file_name(file, name, &p.id).and(p.check()).map(|_| plan.catalog.profiles.push(p))),
            "groups" => serde_json::from_str::<Group>(text)
                .map_err(|e| format!("not a group: {e}"))
                .and_then(|g| check_file_name(file, name, &g.id).and_then(|_| g.normalize()))
                .map(|g| plan.catalog.groups.push(g)),
            "ignition" | "generic" => {
                let kind = if sub == "ignition" { TemplateKind::Ignition } else { TemplateKind::Generic };
                let template = TemplateFile { kind, id: name.to_string(), content: text.clone() };
                check_template(&template).map(|_| plan.catalog.templates.push(template))
            }
            _ => Err("is not inside profiles/, groups/, ignition/ or generic/".into()),
        };
        if let Err(message) = checked {
            plan.errors.push(Finding { file: file.clone(), message });
        }
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

/// Copies `dir/assets` into `target`, keeping files already there; returns how many it copied
/// and the symbolic links it left out because they lead out of `dir` (an asset is served to
/// anyone on the boot network: a link to `/etc/shadow` must not become one).
pub fn copy_assets(dir: &Path, target: &Path) -> std::io::Result<(usize, Vec<std::path::PathBuf>)> {
    fn walk(
        root: &Path,
        from: &Path,
        to: &Path,
        copied: &mut usize,
        left_out: &mut Vec<std::path::PathBuf>,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let (source, dest) = (entry.path(), to.join(entry.file_name()));
            let kind = entry.file_type()?;
            if kind.is_symlink() && !std::fs::canonicalize(&source).is_ok_and(|real| real.starts_with(root)) {
                left_out.push(source);
                continue;
            }
            if source.is_dir() {
                walk(root, &source, &dest, copied, left_out)?;
            } else if std::fs::symlink_metadata(&dest).is_err() {
                std::fs::copy(&source, &dest)?;
                *copied += 1;
            }
        }
        Ok(())
    }
    let (mut copied, mut left_out) = (0, Vec::new());
    let source = dir.join("assets");
    if source.is_dir() {
        let root = std::fs::canonicalize(dir)?;
        walk(&root, &source, target, &mut copied, &mut left_out)?;
    }
    Ok((copied, left_out))
}

/// The files of a Matchbox data directory holding `catalog`, by relative path.
pub fn files_of(catalog: &Catalog) -> Result<BTreeMap<String, String>, serde_json::Error> {
    let mut files = BTreeMap::new();
    for p in &catalog.profiles {
        files.insert(format!("profiles/{}.json", p.id), pretty(p)?);
    }
    for g in &catalog.groups {
        files.insert(format!("groups/{}.json", g.id), pretty(g)?);
    }
    for t in &catalog.templates {
        files.insert(format!("{}/{}", t.kind.as_str(), t.id), t.content.clone());
    }
    Ok(files)
}

/// Pretty JSON with a final newline, as Matchbox's example files are written.
fn pretty(value: &impl Serialize) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value).map(|s| s + "\n")
}

/// Writes `catalog` as a Matchbox data directory into `dir`, which must be empty or new.
pub fn export(catalog: &Catalog, dir: &Path) -> Result<usize, String> {
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| e.to_string())?.next().is_some() {
        return Err(format!("{} is not empty: export into a new or empty folder", dir.display()));
    }
    let files = files_of(catalog).map_err(|e| e.to_string())?;
    for (file, text) in &files {
        let path = dir.join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {file}: {e}"))?;
    }
    Ok(files.len())
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
            [
                "groups/badmac.json",
                "ignition/bad.ign",
                "ignition/bad.yaml.tmpl",
                "profiles/broken.json",
                "profiles/renamed.json"
            ],
            "{:#?}",
            plan.errors
        );
        let message = |file: &str| plan.errors.iter().find(|f| f.file == file).unwrap().message.clone();
        assert!(message("profiles/renamed.json").contains("file is named renamed.json"));
        assert!(message("groups/badmac.json").contains("\"zz\" is not a MAC address"));
        assert!(message("ignition/bad.yaml.tmpl").contains("line 2"));
        assert!(message("ignition/bad.ign").contains("9.9.9 is not a spec"));
        assert!(plan.warnings.iter().any(|w| w.file == "groups/g.json" && w.message.contains("\"missing\"")));
        assert!(plan.warnings.iter().any(|w| w.file == "profiles/ok.json" && w.message.contains("ok.yaml")));
    }

    #[test]
    fn an_export_imports_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "profiles/p.json",
            r#"{"id":"p","name":"P","boot":{"kernel":"/k","initrd":["/i"],"args":["a=1"]},"generic_id":"g.tmpl"}"#,
        );
        write(
            dir.path(),
            "groups/g.json",
            r#"{"id":"g","profile":"p","selector":{"mac":"52-54-00-00-00-01"},"metadata":{"n":1}}"#,
        );
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

    #[test]
    fn copying_assets_leaves_out_links_that_lead_out_of_the_data_directory() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "not an asset").unwrap();
        let data = tempfile::tempdir().unwrap();
        let assets = data.path().join("assets");
        std::fs::create_dir_all(assets.join("sub")).unwrap();
        std::fs::write(assets.join("vmlinuz"), "kernel").unwrap();
        std::fs::write(data.path().join("README"), "inside").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), assets.join("stolen")).unwrap();
        std::os::unix::fs::symlink(outside.path(), assets.join("stolen-dir")).unwrap();
        std::os::unix::fs::symlink(data.path().join("README"), assets.join("sub/readme")).unwrap();
        let target = tempfile::tempdir().unwrap();
        let (copied, left_out) = copy_assets(data.path(), target.path()).unwrap();
        assert_eq!(copied, 2, "vmlinuz, and the link that stays inside");
        assert_eq!(std::fs::read_to_string(target.path().join("sub/readme")).unwrap(), "inside");
        assert!(!target.path().join("stolen").exists() && !target.path().join("stolen-dir").exists());
        let mut left_out: Vec<String> =
            left_out.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        left_out.sort();
        assert_eq!(left_out, ["stolen", "stolen-dir"]);
    }
}
