//! Reading bulk imports: CSV, Tectonic `terraform.tfvars` and Typhoon `terraform.tfvars`.
//!
//! Each reader turns text into one [`ParsedLine`] per machine, keeping the line number the
//! machine came from, so a preview can point at it. Field checks happen later, in one place
//! ([`MachineInput::validate`]).

use super::MAX_IMPORT_LINES;
use app::error::AppError;
use app::machines::fields::split_label_text;
use app::machines::{ImportFormat, MachineInput};
use app::power::BmcInput;
use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::Body;

/// One machine read from an import, before its fields are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// 1-based line in the submitted text.
    pub line: u32,
    pub input: MachineInput,
    /// The machine's BMC, from a CSV's `bmc_*` columns.
    pub bmc: Option<BmcInput>,
    /// Problems found while reading (the field checks add theirs later).
    pub errors: Vec<String>,
}

pub fn parse_import(format: ImportFormat, text: &str) -> Result<(ImportFormat, Vec<ParsedLine>), AppError> {
    let format = match format {
        ImportFormat::Auto => detect(text),
        f => f,
    };
    let lines = match format {
        ImportFormat::Csv | ImportFormat::Auto => parse_csv(text)?,
        ImportFormat::Tectonic => parse_tectonic(&parse_hcl(text)?, &LineIndex::new(text))?,
        ImportFormat::Typhoon => parse_typhoon(&parse_hcl(text)?, &LineIndex::new(text))?,
    };
    if lines.is_empty() {
        return Err(AppError::invalid(format!("The {} text holds no machines.", format.as_str())));
    }
    if lines.len() > MAX_IMPORT_LINES {
        return Err(AppError::invalid(format!(
            "The import has {} machines; at most {MAX_IMPORT_LINES} can be imported at once. Split the list.",
            lines.len()
        )));
    }
    Ok((format, lines))
}

fn detect(text: &str) -> ImportFormat {
    match hcl_edit::parser::parse_body(text) {
        Ok(body)
            if body.has_attribute("tectonic_metal_controller_macs")
                || body.has_attribute("tectonic_metal_worker_macs") =>
        {
            ImportFormat::Tectonic
        }
        Ok(body) if body.has_attribute("controllers") || body.has_attribute("workers") => ImportFormat::Typhoon,
        _ => ImportFormat::Csv,
    }
}

const CSV_COLUMNS: [&str; 11] = [
    "mac",
    "hostname",
    "role",
    "labels",
    "cluster",
    "uuid",
    "serial",
    "bmc_url",
    "bmc_username",
    "bmc_password",
    "bmc_verify",
];

fn parse_csv(text: &str) -> Result<Vec<ParsedLine>, AppError> {
    let index = LineIndex::new(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut records = reader.records().peekable();
    // A first row that names its columns sets their order; otherwise the documented order holds.
    let mut columns: Vec<&str> = CSV_COLUMNS.to_vec();
    if let Some(Ok(first)) = records.peek()
        && first.iter().any(|f| f.eq_ignore_ascii_case("mac"))
    {
        let line = first.position().map_or(1, |p| record_line(text, &index, p.byte() as usize));
        let mut named = Vec::new();
        for field in first.iter() {
            let name = field.to_ascii_lowercase();
            match CSV_COLUMNS.iter().find(|c| **c == name) {
                Some(c) if named.contains(c) => {
                    return Err(AppError::invalid(format!("Line {line}: the column \"{field}\" appears twice.")));
                }
                Some(c) => named.push(*c),
                None => {
                    return Err(AppError::invalid(format!(
                        "Line {line}: \"{field}\" is not a column Pangea knows; use {}.",
                        CSV_COLUMNS.join(", ")
                    )));
                }
            }
        }
        columns = named;
        records.next();
    }
    let mut lines = Vec::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| record_line(text, &index, p.byte() as usize));
                lines.push(ParsedLine {
                    line,
                    input: MachineInput::default(),
                    bmc: None,
                    errors: vec![format!("This line is not valid CSV: {e}")],
                });
                continue;
            }
        };
        // Byte offsets, not the reader's line count, which skips blank lines.
        let line = record.position().map_or(0, |p| record_line(text, &index, p.byte() as usize));
        let mut parsed = ParsedLine { line, input: MachineInput::default(), bmc: None, errors: Vec::new() };
        if record.len() > columns.len() {
            parsed.errors.push(format!(
                "This line has {} fields but only {} columns are named.",
                record.len(),
                columns.len()
            ));
        }
        for (column, value) in columns.iter().zip(record.iter()) {
            // Exports guard cells against spreadsheet formulas with a leading `'`; take it off (a
            // password is taken as written: exports never hold one).
            let value = match value.strip_prefix('\'') {
                Some(rest) if *column != "bmc_password" && rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
                _ => value,
            };
            let value = Some(value.to_string()).filter(|v| !v.is_empty());
            let input = &mut parsed.input;
            if let Some(field) = column.strip_prefix("bmc_") {
                // An empty cell sets nothing: a line that leaves every BMC cell empty has no BMC.
                let Some(value) = &value else { continue };
                let bmc = parsed.bmc.get_or_insert_with(BmcInput::default);
                match field {
                    "url" => bmc.url = value.clone(),
                    "username" => bmc.username = value.clone(),
                    "password" => bmc.password = Some(value.clone()),
                    _ => match value.to_ascii_lowercase().as_str() {
                        "on" => bmc.verify_off = false,
                        "off" => bmc.verify_off = true,
                        _ => parsed.errors.push(format!(
                            "bmc_verify is \"on\" (check the BMC's certificate, the default) or \"off\", not \"{value}\"."
                        )),
                    },
                }
                continue;
            }
            match *column {
                "mac" => input.mac = value.unwrap_or_default(),
                "hostname" => input.hostname = value,
                "role" => input.role = value,
                "cluster" => input.cluster = value,
                "uuid" => input.uuid = value,
                "serial" => input.serial = value,
                "labels" => match split_label_text(value.as_deref().unwrap_or_default()) {
                    Ok(pairs) => input.labels = pairs.into_iter().collect(),
                    Err(e) => parsed.errors.push(e),
                },
                other => parsed.errors.push(format!("\"{other}\" is not a column Pangea knows.")),
            }
        }
        lines.push(parsed);
    }
    Ok(lines)
}

fn parse_hcl(text: &str) -> Result<Body, AppError> {
    hcl_edit::parser::parse_body(text).map_err(|e| {
        let at = e.location();
        AppError::invalid(format!(
            "This is not valid HCL (line {}, column {}): {}",
            at.line(),
            at.column(),
            e.message()
        ))
    })
}

/// Where each line starts, so finding the line of an offset is a binary search: numbering
/// every record of a 50,000-line import stays linear.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let starts =
            std::iter::once(0).chain(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        LineIndex { starts: starts.collect() }
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> u32 {
        self.starts.partition_point(|start| *start <= offset) as u32
    }
}

/// The line a CSV record starts on: the reader's offset may point at blank or comment lines
/// it skipped before the record.
fn record_line(text: &str, index: &LineIndex, offset: usize) -> u32 {
    let bytes = text.as_bytes();
    let mut i = offset;
    loop {
        match bytes.get(i) {
            Some(b'\n' | b'\r') => i += 1,
            Some(b'#') => i += bytes[i..].iter().position(|b| *b == b'\n').unwrap_or(bytes.len() - i),
            _ => return index.line_of(i.min(text.len())),
        }
    }
}

fn line_of_expr(index: &LineIndex, expr: &Expression) -> u32 {
    expr.span().map_or(0, |s| index.line_of(s.start))
}

/// One element of a tfvars list: its line, and its string or why it is not one.
type ListElement = (u32, Result<String, String>);

/// The string elements of a list attribute, each with its line; `None` when absent.
fn string_list(body: &Body, index: &LineIndex, name: &str) -> Result<Option<Vec<ListElement>>, AppError> {
    let Some(attr) = body.get_attribute(name) else { return Ok(None) };
    let Expression::Array(array) = &attr.value else {
        return Err(AppError::invalid(format!(
            "Line {}: {name} must be a list of strings, such as [\"52:54:00:a1:9c:ae\"].",
            line_of_expr(index, &attr.value)
        )));
    };
    Ok(Some(
        array
            .iter()
            .map(|e| {
                let value = match e {
                    Expression::String(s) => Ok(s.value().to_string()),
                    _ => Err(format!("{name} holds something that is not a quoted string.")),
                };
                (line_of_expr(index, e), value)
            })
            .collect(),
    ))
}

fn string_attr(body: &Body, name: &str) -> Option<String> {
    match &body.get_attribute(name)?.value {
        Expression::String(s) => Some(s.value().to_string()),
        _ => None,
    }
}

fn parse_tectonic(body: &Body, index: &LineIndex) -> Result<Vec<ParsedLine>, AppError> {
    let cluster = string_attr(body, "tectonic_cluster_name");
    let mut lines = Vec::new();
    for role in ["controller", "worker"] {
        let key = |what: &str| format!("tectonic_metal_{role}_{what}");
        let Some(macs) = string_list(body, index, &key("macs"))? else { continue };
        let names = string_list(body, index, &key("names"))?;
        let domains = string_list(body, index, &key("domains"))?;
        for (i, (line, mac)) in macs.into_iter().enumerate() {
            let mut parsed = ParsedLine {
                line,
                input: MachineInput { role: Some(role.into()), cluster: cluster.clone(), ..Default::default() },
                bmc: None,
                errors: Vec::new(),
            };
            match mac {
                Ok(mac) => parsed.input.mac = mac,
                Err(e) => parsed.errors.push(e),
            }
            // The machine's host name is its domain (FQDN) when given, else its name.
            for (list, what) in [(&domains, "domains"), (&names, "names")] {
                let Some(list) = list else { continue };
                match list.get(i) {
                    Some((_, Ok(value))) if parsed.input.hostname.is_none() => {
                        parsed.input.hostname = Some(value.clone())
                    }
                    Some((_, Ok(_))) => {}
                    Some((_, Err(e))) => parsed.errors.push(e.clone()),
                    None => parsed.errors.push(format!(
                        "{} has no entry {} for this MAC; the lists must be the same length.",
                        key(what),
                        i + 1
                    )),
                }
            }
            lines.push(parsed);
        }
    }
    Ok(lines)
}

fn parse_typhoon(body: &Body, index: &LineIndex) -> Result<Vec<ParsedLine>, AppError> {
    let cluster = string_attr(body, "cluster_name");
    let mut lines = Vec::new();
    for (list, role) in [("controllers", "controller"), ("workers", "worker")] {
        let Some(attr) = body.get_attribute(list) else { continue };
        let Expression::Array(array) = &attr.value else {
            return Err(AppError::invalid(format!(
                "Line {}: {list} must be a list of objects like {{ name = \"node1\", mac = \"52:54:00:a1:9c:ae\", domain = \"node1.example.com\" }}.",
                line_of_expr(index, &attr.value)
            )));
        };
        for element in array.iter() {
            let mut parsed = ParsedLine {
                line: line_of_expr(index, element),
                input: MachineInput { role: Some(role.into()), cluster: cluster.clone(), ..Default::default() },
                bmc: None,
                errors: Vec::new(),
            };
            let Expression::Object(object) = element else {
                parsed.errors.push(format!("Each entry of {list} must be an object with name, mac and domain."));
                lines.push(parsed);
                continue;
            };
            let (mut name, mut domain) = (None, None);
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(id) => id.as_str().to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().to_string(),
                    ObjectKey::Expression(_) => continue,
                };
                let Expression::String(value) = value.expr() else {
                    parsed.errors.push(format!("{key} must be a quoted string."));
                    continue;
                };
                let value = value.value().to_string();
                match key.as_str() {
                    "mac" => parsed.input.mac = value,
                    "name" => name = Some(value),
                    "domain" => domain = Some(value),
                    other => parsed
                        .errors
                        .push(format!("\"{other}\" is not a Typhoon machine field; use name, mac and domain.")),
                }
            }
            if parsed.input.mac.is_empty() && parsed.errors.is_empty() {
                parsed.errors.push("This entry has no mac.".into());
            }
            parsed.input.hostname = domain.or(name);
            lines.push(parsed);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_come_from_an_index() {
        let index = LineIndex::new("a\nbb\n\nccc");
        let lines: Vec<u32> = [0, 1, 2, 4, 5, 6, 7, 10].iter().map(|o| index.line_of(*o)).collect();
        assert_eq!(lines, [1, 1, 2, 2, 3, 4, 4, 4]);
    }

    #[test]
    fn csv_bmc_columns_give_a_machine_its_bmc_and_a_bad_verify_is_an_error_on_its_line() {
        let text = "mac,labels,bmc_url,bmc_username,bmc_password,bmc_verify\n\
                    52:54:00:00:00:01,,https://10.0.0.11,root,'=calvin,off\n\
                    52:54:00:00:00:02,rack=r1,,,,\n\
                    52:54:00:00:00:03,,https://10.0.0.13,root,calvin,maybe\n";
        let (_, lines) = parse_import(ImportFormat::Csv, text).unwrap();
        let bmc = lines[0].bmc.as_ref().unwrap();
        assert_eq!((bmc.url.as_str(), bmc.username.as_str(), bmc.verify_off), ("https://10.0.0.11", "root", true));
        assert_eq!(bmc.password.as_deref(), Some("'=calvin"), "a password is taken as written");
        assert_eq!(lines[1].bmc, None, "empty cells are no BMC");
        assert_eq!(lines[1].input.labels.get("rack").map(String::as_str), Some("r1"), "and take no label away");
        assert!(lines[2].errors[0].contains("bmc_verify"), "{:?}", lines[2].errors);
        assert!(!lines[2].errors[0].contains("calvin"));
    }

    #[test]
    fn csv_with_a_header_reads_named_columns_and_keeps_line_numbers() {
        let text =
            "hostname,mac,labels\nnode1,52:54:00:00:00:01,\"rack=r1,zone=a\"\n\n# spare\nnode2,52-54-00-00-00-02,\n";
        let (format, lines) = parse_import(ImportFormat::Auto, text).unwrap();
        assert_eq!(format, ImportFormat::Csv);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 2);
        assert_eq!(lines[0].input.hostname.as_deref(), Some("node1"));
        assert_eq!(lines[0].input.labels.get("zone").map(String::as_str), Some("a"));
        assert_eq!(lines[1].line, 5);
        assert_eq!(lines[1].input.mac, "52-54-00-00-00-02");
    }

    #[test]
    fn csv_without_header_uses_the_documented_order() {
        let (_, lines) = parse_import(ImportFormat::Csv, "52:54:00:00:00:01,node1,controller\n").unwrap();
        assert_eq!(lines[0].input.role.as_deref(), Some("controller"));
        assert_eq!(lines[0].line, 1);
    }

    #[test]
    fn csv_with_an_unknown_column_is_refused_with_its_name() {
        let err = parse_import(ImportFormat::Csv, "mac,colour\n52:54:00:00:00:01,red\n").unwrap_err();
        assert!(err.to_string().contains("\"colour\""), "{err}");
    }

    #[test]
    fn csv_line_with_too_many_fields_is_an_error_on_that_line() {
        let (_, lines) = parse_import(ImportFormat::Csv, "mac,hostname\n52:54:00:00:00:01,a,extra\n").unwrap();
        assert_eq!(lines[0].line, 2);
        assert!(lines[0].errors[0].contains("3 fields"));
    }

    const TECTONIC: &str = r#"
tectonic_cluster_name = "mercury"
tectonic_metal_controller_macs = ["52:54:00:a1:9c:ae"]
tectonic_metal_controller_names = ["node1"]
tectonic_metal_controller_domains = ["node1.example.com"]
tectonic_metal_worker_macs = [
  "52:54:00:b2:2f:86",
  "52:54:00:c3:61:77",
]
tectonic_metal_worker_names = ["node2", "node3"]
tectonic_metal_worker_domains = ["node2.example.com"]
"#;

    #[test]
    fn tectonic_tfvars_give_roles_hostnames_cluster_and_element_lines() {
        let (format, lines) = parse_import(ImportFormat::Auto, TECTONIC).unwrap();
        assert_eq!(format, ImportFormat::Tectonic);
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[0].line, lines[0].input.role.as_deref()), (3, Some("controller")));
        assert_eq!(lines[0].input.hostname.as_deref(), Some("node1.example.com"));
        assert_eq!(lines[0].input.cluster.as_deref(), Some("mercury"));
        assert_eq!((lines[1].line, lines[2].line), (7, 8));
        assert!(lines[1].errors.is_empty());
        assert!(lines[2].errors[0].contains("tectonic_metal_worker_domains has no entry 2"), "{:?}", lines[2].errors);
        assert_eq!(lines[2].input.hostname.as_deref(), Some("node3"));
    }

    #[test]
    fn typhoon_tfvars_read_objects_with_their_lines() {
        let text = r#"cluster_name = "mercury"
controllers = [{
  name   = "node1"
  mac    = "52:54:00:a1:9c:ae"
  domain = "node1.example.com"
}]
workers = [
  { name = "node2", mac = "52:54:00:b2:2f:86", domain = "node2.example.com" },
  { name = "node3", macc = "52:54:00:c3:61:77" },
]
"#;
        let (format, lines) = parse_import(ImportFormat::Auto, text).unwrap();
        assert_eq!(format, ImportFormat::Typhoon);
        assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), vec![2, 8, 9]);
        assert_eq!(lines[0].input.mac, "52:54:00:a1:9c:ae");
        assert_eq!(lines[1].input.role.as_deref(), Some("worker"));
        assert!(lines[2].errors.iter().any(|e| e.contains("\"macc\"")), "{:?}", lines[2].errors);
    }

    #[test]
    fn broken_hcl_names_the_line() {
        let err = parse_import(ImportFormat::Typhoon, "controllers = [{ name = \"a\"\n").unwrap_err();
        assert!(err.to_string().contains("line"), "{err}");
    }

    #[test]
    fn empty_imports_are_refused() {
        assert!(parse_import(ImportFormat::Csv, "mac,hostname\n").is_err());
    }
}
