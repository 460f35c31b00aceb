//! Dashboards in Grafana's JSON model, drawn by Pangea against a cluster's Prometheus: the
//! model as Pangea reads it (panels, targets, templating), variables filled in as Grafana
//! fills them, and each panel's queries. Shipped dashboards are built in; imported ones are
//! stored as their JSON ([`super::store`]).

use super::charts::regex_literal;
use super::prometheus::{self, Prometheus, QueryError, legend};
use super::ttl_cache::TtlCache;
use app::monitoring::Unit;
use app::monitoring::dashboards::{
    ALL, Choices, PanelAnswer, PanelData, PanelKind, PanelView, Threshold, VariableView,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// The largest dashboard JSON Pangea imports.
pub const MAX_MODEL_BYTES: usize = 1024 * 1024;
const MAX_PANELS: usize = 200;
const MAX_TARGETS: usize = 20;
const MAX_VARIABLES: usize = 50;
const MAX_OPTIONS: usize = 1_000;
/// The longest query (a panel's, or a variable's) Pangea takes, as for `/query`.
const MAX_QUERY: usize = 10_000;
/// The longest `${name:format}` the templating looks for.
const NAME_LIMIT: usize = 200;

/// The dashboards Pangea ships: a node, a cluster, etcd, and Pangea itself.
pub const SHIPPED: [&str; 4] = [
    include_str!("dashboards/node.json"),
    include_str!("dashboards/cluster.json"),
    include_str!("dashboards/etcd.json"),
    include_str!("dashboards/pangea.json"),
];

/// The shipped dashboards, parsed once (a unit test proves they parse).
pub fn shipped() -> &'static [Dashboard] {
    static PARSED: std::sync::LazyLock<Vec<Dashboard>> = std::sync::LazyLock::new(|| {
        SHIPPED.iter().filter_map(|json| Dashboard::parse(json).ok().map(|(d, _)| d)).collect()
    });
    &PARSED
}

/// Whether `uid` is one of the shipped dashboards'.
pub fn is_shipped(uid: &str) -> bool {
    shipped().iter().any(|d| d.uid == uid)
}

/// How a stat, gauge or bar gauge reduces a series to one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calc {
    Last,
    Mean,
    Max,
    Min,
    Sum,
}

impl Calc {
    fn reduce(self, points: &[(i64, f64)]) -> Option<f64> {
        let values = points.iter().map(|p| p.1);
        match self {
            Calc::Last => points.last().map(|p| p.1),
            Calc::Mean => (!points.is_empty()).then(|| values.sum::<f64>() / points.len() as f64),
            Calc::Max => values.reduce(f64::max),
            Calc::Min => values.reduce(f64::min),
            Calc::Sum => (!points.is_empty()).then(|| values.sum()),
        }
    }
}

/// One query of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub ref_id: String,
    pub expr: String,
    /// Grafana's legend template (`{{label}}`), as Pangea's (`{label}`).
    pub legend: String,
    pub instant: bool,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub view: PanelView,
    pub targets: Vec<Target>,
    pub calc: Calc,
}

/// Where a variable's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A query of Prometheus: `label_values(…)`, `label_names()`, `metrics(…)`, `query_result(…)`.
    Query(String),
    /// Listed in the dashboard: custom, interval and constant variables.
    Listed(Vec<String>),
    /// Typed by the person (a text box), with its default.
    Typed(String),
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub label: String,
    pub source: Source,
    pub multi: bool,
    pub include_all: bool,
    pub all_value: Option<String>,
    pub current: Vec<String>,
    /// Grafana's regex on the values (`/pattern/`): it filters them, and its first group (or
    /// the group named `value`) is the value.
    pub regex: Option<regex::Regex>,
    /// Grafana's sort: 0 none, 1/2 alphabetical, 3/4 numerical (ascending/descending).
    pub sort: u64,
    /// Not shown on the page (a constant, or `hide: 2`).
    pub hidden: bool,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub uid: String,
    pub title: String,
    pub description: String,
    pub variables: Vec<Variable>,
    pub panels: Vec<Panel>,
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Whether `uid` is one Grafana accepts: letters, digits, `-` and `_`, at most 40.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= 40 && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A Grafana unit id as Pangea's unit.
fn unit(id: &str) -> Unit {
    match id {
        "percentunit" => Unit::Ratio,
        "percent" => Unit::Percent,
        "bytes" | "decbytes" | "kbytes" => Unit::Bytes,
        "Bps" | "binBps" | "decBps" => Unit::BytesPerSecond,
        "reqps" | "ops" | "rps" | "wps" | "cps" | "iops" => Unit::PerSecond,
        "s" | "dtdurations" => Unit::Seconds,
        "ms" => Unit::Milliseconds,
        _ => Unit::Count,
    }
}

/// A Grafana colour as a tone the page has light and dark colours for.
fn tone(color: &str) -> &'static str {
    match color.to_ascii_lowercase().as_str() {
        "green" | "dark-green" | "semi-dark-green" | "light-green" | "#73bf69" | "#56a64b" => "ok",
        "red" | "dark-red" | "semi-dark-red" | "light-red" | "#f2495c" | "#e02f44" | "#c4162a" => "bad",
        "yellow" | "orange" | "dark-orange" | "dark-yellow" | "#eab839" | "#ff9830" | "#fade2a" => "warn",
        _ => "info",
    }
}

/// `{{ label }}` (Grafana) as `{label}` (Pangea's legends); `__auto` is no template.
fn legend_template(format: &str) -> String {
    if format == "__auto" {
        return String::new();
    }
    let mut out = String::new();
    let mut rest = format;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        match rest[open + 2..].find("}}") {
            Some(close) => {
                out.push('{');
                out.push_str(rest[open + 2..open + 2 + close].trim());
                out.push('}');
                rest = &rest[open + 2 + close + 2..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn values_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// A custom variable's values: `a,b,c`, or `text : value` pairs (the value counts).
fn listed(query: &str) -> Vec<String> {
    query
        .split(',')
        .map(|item| item.rsplit_once(" : ").map_or(item, |(_, value)| value).trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn parse_regex(name: &str, pattern: &str) -> Result<Option<regex::Regex>, String> {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Ok(None);
    }
    // `/pattern/flags`, as Grafana writes it; a bare pattern is accepted too.
    let (body, flags) = match pattern.strip_prefix('/').and_then(|p| p.rsplit_once('/')) {
        Some((body, flags)) => (body, flags),
        None => (pattern, ""),
    };
    let body = if flags.contains('i') { format!("(?i){body}") } else { body.to_string() };
    regex::RegexBuilder::new(&body)
        .size_limit(1 << 20)
        .build()
        .map(Some)
        .map_err(|e| format!("Variable {name}: its regex {pattern} does not compile: {e}"))
}

fn parse_variable(v: &Value) -> Result<Option<Variable>, String> {
    let name = text(v, "name");
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("A templating variable is named \"{name}\": names hold letters, digits and _ only."));
    }
    let kind = text(v, "type");
    let query = match v.get("query") {
        Some(Value::Object(q)) => {
            // Grafana's Prometheus variable editor: a query string, or label values by fields.
            let label = q.get("label").and_then(Value::as_str).unwrap_or_default();
            match q.get("query").and_then(Value::as_str) {
                Some(query) if !query.is_empty() => query.to_string(),
                _ if !label.is_empty() => {
                    let metric = q.get("metric").and_then(Value::as_str).unwrap_or_default();
                    if metric.is_empty() {
                        format!("label_values({label})")
                    } else {
                        format!("label_values({metric}, {label})")
                    }
                }
                _ => String::new(),
            }
        }
        Some(Value::String(query)) => query.clone(),
        _ => String::new(),
    };
    let source = match kind.as_str() {
        "query" => Source::Query(query),
        "custom" | "interval" => {
            let mut values = listed(&query);
            if values.is_empty() {
                values = v
                    .get("options")
                    .and_then(Value::as_array)
                    .map(|o| o.iter().flat_map(|o| values_of(o.get("value"))).collect())
                    .unwrap_or_default();
            }
            Source::Listed(values)
        }
        "constant" => Source::Listed(vec![query]),
        "textbox" => Source::Typed(query),
        // Data sources, ad hoc filters: Pangea has one Prometheus per cluster and no filters.
        _ => return Ok(None),
    };
    if let Source::Query(query) = &source
        && query.len() > MAX_QUERY
    {
        return Err(format!("Variable {name}: its query is longer than {MAX_QUERY} characters."));
    }
    let current = values_of(v.get("current").and_then(|c| c.get("value")));
    Ok(Some(Variable {
        label: Some(text(v, "label")).filter(|l| !l.is_empty()).unwrap_or_else(|| name.clone()),
        regex: parse_regex(&name, &text(v, "regex"))?,
        multi: v.get("multi").and_then(Value::as_bool).unwrap_or(false),
        include_all: v.get("includeAll").and_then(Value::as_bool).unwrap_or(false),
        all_value: Some(text(v, "allValue")).filter(|a| !a.is_empty()),
        current: current.into_iter().map(|c| if c == "$__all" { ALL.to_string() } else { c }).collect(),
        sort: v.get("sort").and_then(Value::as_u64).unwrap_or(0),
        hidden: kind == "constant" || v.get("hide").and_then(Value::as_u64) == Some(2),
        source,
        name,
    }))
}

fn parse_panel(p: &Value, id: u32) -> Result<Panel, String> {
    let title = text(p, "title");
    let kind_name = text(p, "type");
    if kind_name.is_empty() {
        return Err(format!("Panel {id} (\"{title}\") has no type."));
    }
    let kind = match kind_name.as_str() {
        "timeseries" | "graph" => PanelKind::Timeseries,
        "stat" | "singlestat" => PanelKind::Stat,
        "gauge" => PanelKind::Gauge,
        "bargauge" => PanelKind::BarGauge,
        "table" | "table-old" => PanelKind::Table,
        "row" => PanelKind::Row,
        _ => PanelKind::Other(kind_name),
    };
    let defaults = p.pointer("/fieldConfig/defaults").cloned().unwrap_or(Value::Null);
    let thresholds = defaults
        .pointer("/thresholds/steps")
        .and_then(Value::as_array)
        .map(|steps| {
            steps
                .iter()
                .map(|s| Threshold {
                    value: s.get("value").and_then(Value::as_f64),
                    tone: tone(s.get("color").and_then(Value::as_str).unwrap_or_default()).into(),
                })
                .collect()
        })
        .unwrap_or_default();
    let legend = p.pointer("/options/legend");
    let show_legend = legend.and_then(|l| l.get("showLegend")).and_then(Value::as_bool).unwrap_or(true)
        && legend.and_then(|l| l.get("displayMode")).and_then(Value::as_str) != Some("hidden");
    let calc = match p.pointer("/options/reduceOptions/calcs/0").and_then(Value::as_str).unwrap_or("lastNotNull") {
        "mean" => Calc::Mean,
        "max" => Calc::Max,
        "min" => Calc::Min,
        "sum" => Calc::Sum,
        _ => Calc::Last,
    };
    let mut targets = Vec::new();
    for t in p.get("targets").and_then(Value::as_array).into_iter().flatten() {
        let expr = text(t, "expr");
        if expr.trim().is_empty() || t.get("hide").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if targets.len() == MAX_TARGETS {
            return Err(format!("Panel {id} (\"{title}\") has more than {MAX_TARGETS} queries."));
        }
        if expr.len() > MAX_QUERY {
            return Err(format!("Panel {id} (\"{title}\") has a query longer than {MAX_QUERY} characters."));
        }
        // Grafana names queries A, B, C… when they have no refId.
        let n = targets.len() as u8;
        targets.push(Target {
            ref_id: Some(text(t, "refId")).filter(|r| !r.is_empty()).unwrap_or_else(|| ((b'A' + n) as char).into()),
            expr,
            legend: legend_template(&text(t, "legendFormat")),
            instant: t.get("instant").and_then(Value::as_bool) == Some(true) || text(t, "format") == "table",
        });
    }
    Ok(Panel {
        view: PanelView {
            id,
            description: text(p, "description"),
            width: p.pointer("/gridPos/w").and_then(Value::as_u64).unwrap_or(12).clamp(1, 24) as u8,
            unit: unit(defaults.get("unit").and_then(Value::as_str).unwrap_or_default()),
            min: defaults.get("min").and_then(Value::as_f64),
            max: defaults.get("max").and_then(Value::as_f64),
            thresholds,
            show_legend,
            kind,
            title,
        },
        targets,
        calc,
    })
}

impl Dashboard {
    /// A dashboard from Grafana's JSON (the dashboard, or an export with it under `dashboard`),
    /// and the dashboard object to store; every refusal says what to fix.
    pub fn parse(json: &str) -> Result<(Dashboard, Value), String> {
        if json.len() > MAX_MODEL_BYTES {
            return Err(format!("The dashboard is {} KiB; Pangea imports at most 1 MiB.", json.len() / 1024));
        }
        let mut root: Value =
            serde_json::from_str(json).map_err(|e| format!("This is not JSON: {e}. Export the dashboard as JSON."))?;
        if root.get("panels").is_none() && root.get("dashboard").is_some_and(Value::is_object) {
            root = root["dashboard"].take();
        }
        if !root.is_object() {
            return Err("A Grafana dashboard is a JSON object; this is not one.".into());
        }
        let title = text(&root, "title").trim().to_string();
        if title.is_empty() || title.chars().count() > 200 {
            return Err("The dashboard needs a \"title\" of 1 to 200 characters.".into());
        }
        let uid = text(&root, "uid");
        if !uid.is_empty() && !valid_uid(&uid) {
            return Err(format!(
                "The dashboard's uid \"{uid}\" may hold only letters, digits, - and _, at most 40 of them."
            ));
        }
        let Some(listed_panels) = root.get("panels").and_then(Value::as_array) else {
            return Err("A Grafana dashboard has a \"panels\" list; this has none.".into());
        };
        // Rows folded in Grafana hold their panels inside them: they are laid out after the row.
        let flat: Vec<&Value> = listed_panels
            .iter()
            .flat_map(|p| std::iter::once(p).chain(p.get("panels").and_then(Value::as_array).into_iter().flatten()))
            .collect();
        if flat.len() > MAX_PANELS {
            return Err(format!("The dashboard has {} panels; Pangea draws at most {MAX_PANELS}.", flat.len()));
        }
        let mut panels: Vec<Panel> = Vec::new();
        for (i, p) in flat.into_iter().enumerate() {
            let given = p.get("id").and_then(Value::as_u64).and_then(|id| u32::try_from(id).ok());
            // A missing or repeated id gets one of its own, past any Grafana gives.
            let taken = |id: &u32| panels.iter().any(|q| q.view.id == *id);
            let id = given
                .filter(|id| !taken(id))
                .unwrap_or_else(|| (1_000_000 + i as u32..).find(|id| !taken(id)).unwrap_or(u32::MAX));
            panels.push(parse_panel(p, id)?);
        }
        let listed_variables = root.pointer("/templating/list").and_then(Value::as_array).cloned().unwrap_or_default();
        if listed_variables.len() > MAX_VARIABLES {
            return Err(format!("The dashboard has more than {MAX_VARIABLES} variables."));
        }
        let variables: Vec<Variable> =
            listed_variables.iter().map(parse_variable).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect();
        let dashboard = Dashboard { uid, title, description: text(&root, "description"), variables, panels };
        Ok((dashboard, root))
    }

    pub fn panel(&self, id: u32) -> Option<&Panel> {
        self.panels.iter().find(|p| p.view.id == id)
    }
}

/// A variable's values as they go into a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    pub values: Vec<String>,
    pub fill: Fill,
}

/// How a variable's values go into a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// As they are: a macro, or an "All" variable's `allValue`.
    Raw,
    /// A single-value variable: its value, with backslashes and `"` escaped for PromQL's strings.
    Plain,
    /// A multi-value or "All" variable: each value regex-escaped, several as `(a|b)`.
    Regex,
}

impl Filled {
    fn raw(value: impl Into<String>) -> Filled {
        Filled { values: vec![value.into()], fill: Fill::Raw }
    }

    /// As Grafana's Prometheus data source formats it, or as `${name:format}` asks.
    fn format(&self, format: &str) -> String {
        match (format, self.fill) {
            ("raw" | "text" | "csv", _) | (_, Fill::Raw) => self.values.join(","),
            ("pipe", _) => self.values.join("|"),
            (f, Fill::Plain) if f != "regex" => {
                self.values.iter().map(|v| v.replace('\\', r"\\").replace('"', r#"\""#)).collect::<Vec<_>>().join(",")
            }
            _ => {
                let escaped: Vec<String> = self.values.iter().map(|v| regex_literal(v)).collect();
                if escaped.len() == 1 { escaped.join("") } else { format!("({})", escaped.join("|")) }
            }
        }
    }
}

/// The macros Grafana fills in from the range and step.
pub fn builtins(start: i64, end: i64, step: i64) -> BTreeMap<String, Filled> {
    let range = (end - start).max(1);
    BTreeMap::from([
        ("__rate_interval".to_string(), Filled::raw(prometheus::rate_interval(step))),
        ("__interval".to_string(), Filled::raw(format!("{step}s"))),
        ("__interval_ms".to_string(), Filled::raw((step * 1000).to_string())),
        ("__range".to_string(), Filled::raw(format!("{range}s"))),
        ("__range_s".to_string(), Filled::raw(range.to_string())),
        ("__range_ms".to_string(), Filled::raw((range * 1000).to_string())),
    ])
}

/// `$name`, `${name}`, `${name:format}` and `[[name]]` replaced by the variables' values;
/// unknown names are left as they are.
pub fn interpolate(text: &str, vars: &BTreeMap<String, Filled>) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        // A name and its format are short: the closing brace is looked for nearby only, so a
        // long query of unclosed `${` costs no more than a short one per character.
        let near = |body: &str, close: &str| body.get(..body.len().min(NAME_LIMIT)).and_then(|b| b.find(close));
        let (inner, used) = if let Some(body) = tail.strip_prefix("${") {
            match near(body, "}") {
                Some(close) => (&body[..close], close + 3),
                None => ("", 0),
            }
        } else if let Some(body) = tail.strip_prefix("[[") {
            match near(body, "]]") {
                Some(close) => (&body[..close], close + 4),
                None => ("", 0),
            }
        } else if let Some(body) = tail.strip_prefix('$') {
            let len = body.find(|c: char| !word(c)).unwrap_or(body.len());
            (&body[..len], len + 1)
        } else {
            ("", 0)
        };
        let (name, format) = inner.split_once(':').unwrap_or((inner, ""));
        match vars.get(name) {
            Some(filled) if used > 0 => {
                out.push_str(&filled.format(format));
                rest = &tail[used..];
            }
            _ => {
                let skip = tail.chars().next().map_or(1, char::len_utf8);
                out.push_str(&tail[..skip]);
                rest = &tail[skip..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A variable's values by cluster, query and time span, kept for a few seconds, as each panel
/// of a dashboard with "All" chosen needs them.
pub type OptionsCache = TtlCache<(String, String, i64, i64), Vec<String>>;

/// `name(argument)` of a variable query, e.g. `label_values(up, job)`.
fn call<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.trim().strip_prefix(name)?.trim_start().strip_prefix('(')?.strip_suffix(')').map(str::trim)
}

/// The values a query variable's query lists, from Prometheus.
async fn query_options(prometheus: &Prometheus, query: &str, start: i64, end: i64) -> Result<Vec<String>, QueryError> {
    if let Some(args) = call(query, "label_values") {
        let (selector, label) = match args.rsplit_once(',') {
            Some((selector, label)) => (Some(selector.trim()), label.trim()),
            None => (None, args),
        };
        return prometheus.label_values(label, selector, start, end).await;
    }
    if call(query, "label_names").is_some() {
        return prometheus.label_names(start, end).await;
    }
    if let Some(pattern) = call(query, "metrics") {
        let names = prometheus.label_values("__name__", None, start, end).await?;
        let filter = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| QueryError::Refused(format!("metrics({pattern}): {e}")))?;
        return Ok(names.into_iter().filter(|n| filter.is_match(n)).collect());
    }
    // `query_result(expr)`, or a bare expression: each sample as Grafana writes it, for the
    // variable's regex to pick from.
    let expr = call(query, "query_result").unwrap_or(query);
    Ok(prometheus
        .instant(expr)
        .await?
        .into_iter()
        .map(|(mut labels, value)| {
            let name = labels.remove("__name__").unwrap_or_default();
            let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}} {value}", pairs.join(", "))
        })
        .collect())
}

fn refine(variable: &Variable, mut values: Vec<String>) -> Vec<String> {
    if let Some(regex) = &variable.regex {
        values = values
            .into_iter()
            .filter_map(|v| {
                let caps = regex.captures(&v)?;
                // The group named `value`, else the first group, else the whole value (Grafana's rule).
                Some(caps.name("value").or_else(|| caps.get(1)).map_or_else(|| v.clone(), |m| m.as_str().to_string()))
            })
            .collect();
    }
    match variable.sort {
        1 | 5 => values.sort(),
        2 | 6 => values.sort_by(|a, b| b.cmp(a)),
        3 | 4 => {
            let number = |v: &String| v.parse::<f64>().unwrap_or(f64::MAX);
            values.sort_by(|a, b| number(a).total_cmp(&number(b)));
            if variable.sort == 4 {
                values.reverse();
            }
        }
        _ => {}
    }
    let mut seen = std::collections::HashSet::new();
    values.retain(|v| seen.insert(v.clone()));
    values.truncate(MAX_OPTIONS);
    values
}

/// Each variable's options and chosen values, in order (a variable's query may use those
/// before it). With `list` false, a chosen value is taken as it is and no options are asked
/// for: panels get the choices the page resolved.
pub async fn resolve(
    dashboard: &Dashboard,
    prometheus: &Prometheus,
    options_cache: &OptionsCache,
    cluster: &str,
    choices: &Choices,
    (start, end, step): (i64, i64, i64),
    list: bool,
) -> (Vec<VariableView>, BTreeMap<String, Filled>) {
    let mut filled = builtins(start, end, step);
    let mut views = Vec::new();
    for variable in &dashboard.variables {
        let chosen: Vec<String> = choices
            .get(&variable.name)
            .map(|c| c.iter().filter(|v| v.len() <= 500).take(100).cloned().collect())
            .unwrap_or_default();
        let needs_options = list || chosen.is_empty() || (chosen == [ALL] && variable.all_value.is_none());
        let typed = matches!(variable.source, Source::Typed(_));
        let (options, error) = match (&variable.source, needs_options) {
            (Source::Listed(values), _) => (refine(variable, values.clone()), None),
            (Source::Typed(default), _) => (vec![default.clone()], None),
            (Source::Query(_), false) => (Vec::new(), None),
            (Source::Query(query), true) => {
                // Up to now, past the range's end (aligned down to the step), so that a series
                // that appeared in the last step is listed too.
                let key = (cluster.to_string(), interpolate(query, &filled), start, end + step);
                let now = std::time::Instant::now();
                match options_cache.fresh(&key, now) {
                    Some(values) => (refine(variable, values), None),
                    None => match query_options(prometheus, &key.1, start, end + step).await {
                        // No values yet is not kept: the series may be about to appear. A
                        // failing Prometheus fails the panel's own query anyway, and is asked
                        // again once it is back.
                        Ok(values) => {
                            if !values.is_empty() {
                                options_cache.remember(key, values.clone(), now);
                            }
                            (refine(variable, values), None)
                        }
                        Err(e) => (Vec::new(), Some(e.to_string())),
                    },
                }
            }
        };
        let allowed = |v: &String| typed || (v == ALL && variable.include_all) || options.contains(v) || !needs_options;
        let mut current: Vec<String> = chosen.into_iter().filter(allowed).collect();
        if current.is_empty() {
            current = variable.current.iter().filter(|v| allowed(v)).cloned().collect();
        }
        if current.is_empty() {
            current = if variable.include_all {
                vec![ALL.to_string()]
            } else {
                options.first().cloned().into_iter().collect()
            };
        }
        if !variable.multi && current.len() > 1 {
            current.truncate(1);
        }
        let fill = if variable.multi || variable.include_all { Fill::Regex } else { Fill::Plain };
        let value = if current == [ALL] {
            match &variable.all_value {
                Some(all) => Filled::raw(all.clone()),
                None => Filled { values: options.clone(), fill },
            }
        } else {
            Filled { values: current.clone(), fill }
        };
        filled.insert(variable.name.clone(), value);
        if !variable.hidden {
            views.push(VariableView {
                name: variable.name.clone(),
                label: variable.label.clone(),
                options,
                current,
                multi: variable.multi,
                include_all: variable.include_all,
                typed,
                error,
            });
        }
    }
    (views, filled)
}

/// A panel's data over the range: lines for a time series, one value per series (reduced by
/// the panel's calculation, or an instant query) for stats and gauges, rows for a table.
pub async fn draw(
    prometheus: &Prometheus,
    panel: &Panel,
    filled: &BTreeMap<String, Filled>,
    (start, end, step): (i64, i64, i64),
) -> PanelAnswer {
    let queries: Vec<String> = panel.targets.iter().map(|t| interpolate(&t.expr, filled)).collect();
    let mut answer = PanelAnswer { panel: panel.view.clone(), queries: queries.clone(), data: None, error: None };
    if matches!(panel.view.kind, PanelKind::Row | PanelKind::Other(_)) {
        answer.error = Some("Pangea does not draw this kind of panel.".into());
        return answer;
    }
    if queries.is_empty() {
        answer.error = Some("This panel has no Prometheus query.".into());
        return answer;
    }
    let drawn: Result<PanelData, QueryError> = async {
        match panel.view.kind {
            PanelKind::Timeseries => {
                let mut series = Vec::new();
                for (target, query) in panel.targets.iter().zip(&queries) {
                    series.extend(prometheus.range(query, &target.legend, start, end, step).await?);
                }
                series.retain(|s| !s.points.is_empty());
                Ok(PanelData::Series { start, end, series })
            }
            PanelKind::Table => {
                let named = queries.len() > 1;
                let mut columns: Vec<String> = Vec::new();
                let mut samples = Vec::new();
                for (target, query) in panel.targets.iter().zip(&queries) {
                    let column = if named { format!("Value #{}", target.ref_id) } else { "Value".to_string() };
                    for (mut labels, value) in prometheus.instant(query).await? {
                        labels.remove("__name__");
                        for key in labels.keys() {
                            if !columns.contains(key) {
                                columns.push(key.clone());
                            }
                        }
                        samples.push((labels, column.clone(), value));
                    }
                }
                columns.sort();
                let value_columns: Vec<String> = if named {
                    panel.targets.iter().map(|t| format!("Value #{}", t.ref_id)).collect()
                } else {
                    vec!["Value".into()]
                };
                let rows = samples
                    .into_iter()
                    .map(|(labels, column, value)| {
                        let mut row: Vec<String> =
                            columns.iter().map(|c| labels.get(c).cloned().unwrap_or_default()).collect();
                        row.extend(
                            value_columns
                                .iter()
                                .map(|c| if *c == column { panel.view.unit.format(value) } else { String::new() }),
                        );
                        row
                    })
                    .collect();
                columns.extend(value_columns);
                Ok(PanelData::Table { columns, rows })
            }
            _ => {
                let mut values = Vec::new();
                for (target, query) in panel.targets.iter().zip(&queries) {
                    if target.instant {
                        for (labels, value) in prometheus.instant(query).await? {
                            values.push((legend(&target.legend, &labels), value));
                        }
                    } else {
                        for series in prometheus.range(query, &target.legend, start, end, step).await? {
                            if let Some(value) = panel.calc.reduce(&series.points) {
                                values.push((series.legend, value));
                            }
                        }
                    }
                }
                Ok(PanelData::Values { values })
            }
        }
    }
    .await;
    match drawn {
        Ok(data) => {
            let empty = match &data {
                PanelData::Series { series, .. } => series.is_empty(),
                PanelData::Values { values } => values.is_empty(),
                PanelData::Table { rows, .. } => rows.is_empty(),
            };
            if empty {
                answer.error = Some("No data: Prometheus has no series for this panel in this range.".into());
            } else {
                answer.data = Some(data);
            }
        }
        Err(e) => answer.error = Some(e.to_string()),
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Filled> {
        pairs
            .iter()
            .map(|(k, v)| {
                let fill = if v.len() > 1 { Fill::Regex } else { Fill::Plain };
                (k.to_string(), Filled { values: v.iter().map(|s| s.to_string()).collect(), fill })
            })
            .collect()
    }

    #[test]
    fn variables_fill_in_as_grafana_writes_them() {
        let mut filled = vars(&[("instance", &["10.0.0.1:9100"]), ("verb", &["GET", "LIST"]), ("job", &["node"])]);
        filled.extend(builtins(0, 3600, 15));
        assert_eq!(
            interpolate(r#"rate(x{instance="$instance",verb=~"${verb}"}[$__rate_interval])"#, &filled),
            r#"rate(x{instance="10.0.0.1:9100",verb=~"(GET|LIST)"}[60s])"#
        );
        assert_eq!(interpolate("increase(x[$__range]) [[job]] ${job:regex}", &filled), "increase(x[3600s]) node node");
        assert_eq!(interpolate("${verb:pipe} ${verb:csv}", &filled), "GET|LIST GET,LIST");
        assert_eq!(interpolate("${instance:regex}", &filled), r"10\\.0\\.0\\.1:9100");
        // A dotted value in an alternation is a literal dot, escaped for RE2 inside PromQL's string.
        let dotted = vars(&[("host", &["a.b", "c"])]);
        assert_eq!(interpolate("$host", &dotted), r"(a\\.b|c)");
        // Unknown names, a lone $ and brackets are left alone.
        assert_eq!(interpolate("$nope ${nope} $ [x] [[nope]]", &filled), "$nope ${nope} $ [x] [[nope]]");
        assert_eq!(interpolate("$__range_s $__interval", &filled), "3600 15s");
        // One value of a plain variable keeps PromQL's string whole; one value of a multi-value
        // variable is still a regex.
        let quoted = vars(&[("path", &[r#"C:\x"y"#])]);
        assert_eq!(interpolate(r#"{path="$path"}"#, &quoted), r#"{path="C:\\x\"y"}"#);
        let one = BTreeMap::from([("host".to_string(), Filled { values: vec!["a.b".into()], fill: Fill::Regex })]);
        assert_eq!(interpolate("$host", &one), r"a\\.b");
        // Unclosed braces in a long query are text, found quickly.
        let long = "${".repeat(5_000);
        assert_eq!(interpolate(&long, &filled), long);
    }

    #[tokio::test]
    async fn a_query_variables_values_are_asked_once_per_cluster_query_and_span() {
        let json = r#"{"uid": "v", "title": "V", "templating": {"list": [
            {"name": "instance", "type": "query", "query": "label_values(up, instance)"}]}, "panels": []}"#;
        let (dashboard, _) = Dashboard::parse(json).unwrap();
        // Nothing listens on a port just freed: asking this Prometheus fails, in words.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let down = Prometheus::new(&format!("http://127.0.0.1:{port}"), reqwest::Client::new());
        let cache = OptionsCache::new(std::time::Duration::from_secs(5));
        let span = (1_000, 1_060, 15);
        let (views, _) = resolve(&dashboard, &down, &cache, "prod", &Choices::new(), span, true).await;
        assert!(views[0].error.is_some(), "the variable names why it has no values");
        let key = ("prod".to_string(), "label_values(up, instance)".to_string(), 1_000, 1_075);
        assert_eq!(cache.fresh(&key, std::time::Instant::now()), None, "a failure is asked again");
        // Values are kept: the next panel gets them without asking (this Prometheus would fail).
        cache.remember(key, vec!["a:9100".into()], std::time::Instant::now());
        let (views, _) = resolve(&dashboard, &down, &cache, "prod", &Choices::new(), span, true).await;
        assert_eq!((views[0].options.clone(), views[0].error.clone()), (vec!["a:9100".to_string()], None));
        // Another cluster's variable is asked of its own Prometheus.
        let (views, _) = resolve(&dashboard, &down, &cache, "staging", &Choices::new(), span, true).await;
        assert!(views[0].error.is_some());
    }

    #[test]
    fn grafana_legends_become_pangea_legends() {
        assert_eq!(legend_template("{{instance}} {{ mode }}"), "{instance} {mode}");
        assert_eq!(legend_template("__auto"), "");
        assert_eq!(legend_template("used {{"), "used {{");
    }

    #[test]
    fn an_export_with_rows_parses_into_panels_and_variables() {
        let json = r#"{"dashboard": {"uid": "abc_1", "title": "Nodes",
            "templating": {"list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "instance", "type": "query", "query": {"query": "label_values(up, instance)"},
                 "regex": "/(.*):9100/", "current": {"value": "a:9100"}},
                {"name": "mode", "type": "custom", "query": "idle,user", "multi": true, "includeAll": true,
                 "current": {"value": ["$__all"]}},
                {"name": "k", "type": "constant", "query": "v"}]},
            "panels": [
                {"id": 1, "type": "row", "title": "CPU", "collapsed": true, "panels": [
                    {"id": 2, "type": "timeseries", "title": "CPU", "gridPos": {"w": 24},
                     "fieldConfig": {"defaults": {"unit": "percentunit", "max": 1,
                        "thresholds": {"steps": [{"color": "green", "value": null}, {"color": "red", "value": 0.9}]}}},
                     "options": {"legend": {"showLegend": false}},
                     "targets": [{"refId": "A", "expr": "x", "legendFormat": "{{mode}}"}, {"refId": "B", "expr": "y", "hide": true}]}]},
                {"id": 2, "type": "piechart", "title": "Pie"},
                {"type": "stat", "title": "Up", "options": {"reduceOptions": {"calcs": ["max"]}},
                 "targets": [{"expr": "up", "instant": true}]}]}}"#;
        let (dashboard, model) = Dashboard::parse(json).unwrap();
        assert_eq!(model["uid"], "abc_1", "the export's dashboard is what is stored");
        assert_eq!(dashboard.title, "Nodes");
        let names: Vec<&str> = dashboard.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["instance", "mode", "k"], "the data source variable is Pangea's own");
        assert_eq!(dashboard.variables[1].source, Source::Listed(vec!["idle".into(), "user".into()]));
        assert_eq!(dashboard.variables[1].current, [ALL]);
        assert!(dashboard.variables[2].hidden);
        let kinds: Vec<&PanelKind> = dashboard.panels.iter().map(|p| &p.view.kind).collect();
        assert_eq!(
            kinds,
            [&PanelKind::Row, &PanelKind::Timeseries, &PanelKind::Other("piechart".into()), &PanelKind::Stat]
        );
        let cpu = &dashboard.panels[1];
        assert_eq!((cpu.view.id, cpu.view.width, cpu.view.unit, cpu.view.max), (2, 24, Unit::Ratio, Some(1.0)));
        assert!(!cpu.view.show_legend);
        assert_eq!(cpu.targets.len(), 1, "a hidden query is not asked");
        assert_eq!(cpu.targets[0].legend, "{mode}");
        assert_eq!(Threshold::tone_of(&cpu.view.thresholds, 0.95), "bad");
        assert_ne!(dashboard.panels[2].view.id, 2, "a repeated id gets one of its own");
        let up = &dashboard.panels[3];
        assert_eq!((up.calc, up.targets[0].instant, up.targets[0].ref_id.as_str()), (Calc::Max, true, "A"));
        let regex = dashboard.variables[0].regex.as_ref().unwrap();
        assert_eq!(refine(&dashboard.variables[0], vec!["b:9100".into(), "a:9100".into(), "c:22".into()]), ["b", "a"]);
        assert!(regex.is_match("a:9100"));
    }

    #[test]
    fn broken_dashboards_are_refused_with_what_to_fix() {
        let refused = |json: &str| Dashboard::parse(json).unwrap_err();
        assert!(refused("{\"title\": ").starts_with("This is not JSON"), "{}", refused("{\"title\": "));
        assert!(refused("[1]").contains("JSON object"));
        assert!(refused(r#"{"panels": []}"#).contains("title"));
        assert!(refused(r#"{"title": "t"}"#).contains("\"panels\""));
        assert!(refused(r#"{"title": "t", "uid": "../x", "panels": []}"#).contains("uid"));
        assert!(
            refused(r#"{"title": "t", "panels": [{"id": 4, "title": "CPU"}]}"#)
                .contains("Panel 4 (\"CPU\") has no type")
        );
        assert!(
            refused(r#"{"title": "t", "panels": [], "templating": {"list": [{"name": "a b", "type": "custom"}]}}"#)
                .contains("names hold letters")
        );
        assert!(
            refused(r#"{"title": "t", "panels": [], "templating": {"list": [{"name": "a", "type": "query", "regex": "/(/"}]}}"#)
                .contains("does not compile")
        );
        let big = format!(r#"{{"title": "t", "panels": [], "description": "{}"}}"#, "x".repeat(MAX_MODEL_BYTES));
        assert!(refused(&big).contains("at most 1 MiB"));
    }

    #[test]
    fn every_shipped_dashboard_parses_and_pangea_draws_all_its_panels() {
        for json in SHIPPED {
            let (dashboard, _) = Dashboard::parse(json).unwrap();
            assert!(dashboard.uid.starts_with("pangea-"), "{}", dashboard.uid);
            assert!(!dashboard.panels.is_empty(), "{}", dashboard.title);
            for panel in &dashboard.panels {
                assert!(!matches!(panel.view.kind, PanelKind::Other(_)), "{}: {}", dashboard.title, panel.view.title);
                if panel.view.kind != PanelKind::Row {
                    assert!(!panel.targets.is_empty(), "{}: {}", dashboard.title, panel.view.title);
                }
            }
        }
    }

    #[test]
    fn stats_reduce_as_their_calculation_says() {
        let points = [(0, 1.0), (15, 3.0), (30, 2.0)];
        assert_eq!(Calc::Last.reduce(&points), Some(2.0));
        assert_eq!(Calc::Mean.reduce(&points), Some(2.0));
        assert_eq!(Calc::Max.reduce(&points), Some(3.0));
        assert_eq!(Calc::Min.reduce(&points), Some(1.0));
        assert_eq!(Calc::Sum.reduce(&points), Some(6.0));
        assert_eq!(Calc::Mean.reduce(&[]), None);
    }
}
