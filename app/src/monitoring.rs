//! Cluster and node health as charts, from each cluster's own Prometheus: the time ranges people
//! pick, and the charts the server answers with.

pub mod dashboards;
#[cfg(feature = "ssr")]
pub mod drawn;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use serde::{Deserialize, Serialize};

/// The ranges the picker offers, and a custom one (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TimeRange {
    /// The last this many seconds, up to now.
    Last {
        seconds: u32,
    },
    Between {
        start: i64,
        end: i64,
    },
}

/// The picker's presets: (label, seconds).
pub const PRESETS: [(&str, u32); 5] = [("15m", 900), ("1h", 3_600), ("6h", 21_600), ("24h", 86_400), ("7d", 604_800)];

/// The longest range a chart may cover.
pub const MAX_RANGE_SECONDS: i64 = 31 * 86_400;

impl TimeRange {
    /// `15m`, `1h`, `6h`, `24h`, `7d`, or `START..END` in Unix seconds.
    pub fn parse(text: &str) -> Result<TimeRange, String> {
        let text = text.trim();
        if let Some((_, seconds)) = PRESETS.iter().find(|(label, _)| *label == text) {
            return Ok(TimeRange::Last { seconds: *seconds });
        }
        let between = text.split_once("..").and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        match between {
            Some((start, end)) => TimeRange::Between { start, end }.checked(),
            None => {
                Err(format!("\"{text}\" is not a time range: use 15m, 1h, 6h, 24h, 7d, or START..END in Unix seconds."))
            }
        }
    }

    /// A custom range must end after it starts and cover at most [`MAX_RANGE_SECONDS`].
    pub fn checked(self) -> Result<TimeRange, String> {
        match self {
            TimeRange::Between { start, end } if end <= start => Err("The range must end after it starts.".into()),
            TimeRange::Between { start, end } if end - start > MAX_RANGE_SECONDS => {
                Err("A range covers at most 31 days.".into())
            }
            TimeRange::Last { seconds } if seconds == 0 || i64::from(seconds) > MAX_RANGE_SECONDS => {
                Err("A range covers between 1 second and 31 days.".into())
            }
            ok => Ok(ok),
        }
    }

    /// The range's start and end, in Unix seconds, at `now`.
    pub fn bounds(self, now: i64) -> (i64, i64) {
        match self {
            TimeRange::Last { seconds } => (now - i64::from(seconds), now),
            TimeRange::Between { start, end } => (start, end),
        }
    }

    /// How the picker names it.
    pub fn label(self) -> String {
        match self {
            TimeRange::Last { seconds } => PRESETS
                .iter()
                .find(|(_, s)| *s == seconds)
                .map_or_else(|| format!("{seconds}s"), |(label, _)| label.to_string()),
            TimeRange::Between { start, end } => format!("{start}..{end}"),
        }
    }
}

/// What a chart's values measure, for axis labels and hover values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// 0..1, shown as a percentage.
    Ratio,
    /// 0..100.
    Percent,
    Bytes,
    BytesPerSecond,
    PerSecond,
    Seconds,
    Milliseconds,
    Count,
}

impl Unit {
    /// A value with its unit, e.g. `42.5 %`, `1.2 GiB`, `3.4 req/s`, `12 ms`.
    pub fn format(self, value: f64) -> String {
        if !value.is_finite() {
            return "–".into();
        }
        match self {
            Unit::Ratio => format!("{:.1} %", value * 100.0),
            Unit::Percent => format!("{value:.1} %"),
            Unit::Bytes => binary(value, ""),
            Unit::BytesPerSecond => binary(value, "/s"),
            Unit::PerSecond => format!("{} /s", short(value)),
            Unit::Seconds if value.abs() < 1.0 => format!("{} ms", short(value * 1000.0)),
            Unit::Seconds => format!("{} s", short(value)),
            Unit::Milliseconds => Unit::Seconds.format(value / 1000.0),
            Unit::Count => short(value),
        }
    }
}

/// Three significant figures at most, without a trailing `.0`.
fn short(value: f64) -> String {
    let text = if value.abs() >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    if text == "-0" { "0".into() } else { text }
}

fn binary(value: f64, suffix: &str) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled.abs() >= 1024.0 && unit < units.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{} {}{suffix}", short(scaled), units[unit])
}

/// One line of a chart: its legend and its points (Unix seconds, value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Series {
    pub legend: String,
    pub points: Vec<(i64, f64)>,
}

/// A chart as the server answers it: its series, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub unit: Unit,
    /// The PromQL asked, with the step's rate interval filled in.
    pub query: String,
    pub series: Vec<Series>,
    /// Prometheus refused or failed this query, in words.
    pub error: Option<String>,
}

/// A set of charts over one range, at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Charts {
    pub start: i64,
    pub end: i64,
    pub step: u32,
    /// The Prometheus asked, for "open in Prometheus" links.
    pub prometheus_url: String,
    /// Why there are no charts at all: no Prometheus linked, or it is unreachable.
    pub unavailable: Option<String>,
    pub charts: Vec<Chart>,
}

/// Where an alert stands: pending (its condition holds, not yet for long enough; from
/// Prometheus) or firing (from Alertmanager, not silenced or inhibited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Pending,
    Firing,
}

/// An alert as the Alerts sections list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Alert {
    pub name: String,
    pub state: AlertState,
    /// The `severity` label ('' when it has none).
    pub severity: String,
    /// The `summary` annotation, else `description`, else ''.
    pub summary: String,
    /// RFC 3339: when it started firing (or became pending).
    pub since: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// The rule's expression in the Prometheus that raised it.
    pub source: String,
}

/// A cluster's (or a node's) alerts, or why they cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Alerts {
    pub alerts: Vec<Alert>,
    /// No Alertmanager linked, or it is unreachable, in words.
    pub unavailable: Option<String>,
}

/// One matcher of a silence, as Alertmanager's API v2 has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// `name=value`, `name!=value`, `name=~regex` or `name!~regex`, as Alertmanager writes them.
    pub fn parse(line: &str) -> Result<Matcher, String> {
        let line = line.trim();
        for (op, is_equal, is_regex) in
            [("=~", true, true), ("!~", false, true), ("!=", false, false), ("=", true, false)]
        {
            if let Some((name, value)) = line.split_once(op) {
                let name = name.trim();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                let value = value.trim().trim_matches('"');
                return Ok(Matcher { name: name.into(), value: value.into(), is_regex, is_equal });
            }
        }
        Err(format!("\"{line}\" is not a matcher: write label=value, label!=value, label=~regex or label!~regex."))
    }

    /// The matcher as [`Matcher::parse`] reads it.
    pub fn text(&self) -> String {
        let op = match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        };
        format!("{}{op}{}", self.name, self.value)
    }
}

/// A silence to create: its matchers (pre-filled from an alert's labels), how long, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SilenceInput {
    pub matchers: Vec<Matcher>,
    /// `30m`, `2h`, `1d`: at most 30 days.
    pub duration: String,
    pub comment: String,
}

/// A silence in a cluster's Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Silence {
    pub id: String,
    /// active, pending or expired.
    pub state: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

/// `30m`, `2h`, `1d` as seconds: at least a minute, at most 30 days.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let seconds = match (number.parse::<u64>(), unit) {
        (Ok(n), "m") => n * 60,
        (Ok(n), "h") => n * 3_600,
        (Ok(n), "d") => n * 86_400,
        _ => return Err(format!("\"{text}\" is not a duration: use minutes, hours or days, such as 30m, 2h or 1d.")),
    };
    if !(60..=30 * 86_400).contains(&seconds) {
        return Err("A silence lasts between 1 minute and 30 days.".into());
    }
    Ok(seconds)
}

/// A dashboard of the cluster's Grafana, as its search API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GrafanaDashboard {
    pub uid: String,
    pub title: String,
    /// '' for the General folder.
    pub folder: String,
    /// Where it opens through the console's proxy, in kiosk mode; '' where this Pangea serves
    /// no Grafana (`--grafana-listen`).
    pub embed_path: String,
}

/// The origin of the clusters' Grafanas when they are served on one of their own: the console's
/// pages may frame it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrafanaFrames(pub Option<String>);

/// One etcd member, from its metrics in the cluster's Prometheus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EtcdMember {
    /// Its `instance` label (the scraped address).
    pub instance: String,
    /// Scraped now and has a leader.
    pub healthy: bool,
    pub leader: bool,
    /// Bytes; `None` while it is down.
    pub db_size: Option<f64>,
    /// The backend quota in bytes.
    pub quota: Option<f64>,
    /// Proposals that failed over the last hour.
    pub failed_proposals: Option<f64>,
}

/// etcd's members and its quorum in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EtcdHealth {
    pub members: Vec<EtcdMember>,
    /// "3 members, 3 healthy: one may fail".
    pub quorum: String,
    /// Losing one more member (or none, if quorum is already lost) stops the cluster.
    pub at_risk: bool,
    /// No Prometheus, or no etcd metrics in it, in words.
    pub unavailable: Option<String>,
}

/// The quorum of `members` with `healthy` of them up, in words, and whether it is at risk.
pub fn quorum_words(members: usize, healthy: usize) -> (String, bool) {
    let count = |n: usize| match n {
        1 => "one".to_string(),
        2 => "two".into(),
        3 => "three".into(),
        n => n.to_string(),
    };
    let counted = if members == 1 { "1 member".to_string() } else { format!("{members} members") };
    let quorum = members / 2 + 1;
    if healthy < quorum {
        let missing = quorum - healthy;
        return (
            format!(
                "{counted}, {healthy} healthy: quorum is lost, and the cluster cannot change until {} more {} back",
                count(missing),
                if missing == 1 { "comes" } else { "come" }
            ),
            true,
        );
    }
    match healthy - quorum {
        0 if members == 1 => {
            ("1 member, 1 healthy: a single member has no spare; losing it stops the cluster".into(), false)
        }
        0 => (format!("{counted}, {healthy} healthy: losing one more stops the cluster"), true),
        spare => (format!("{counted}, {healthy} healthy: {} may fail", count(spare)), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_reads_in_plain_words() {
        assert_eq!(quorum_words(3, 3), ("3 members, 3 healthy: one may fail".to_string(), false));
        assert_eq!(quorum_words(3, 2), ("3 members, 2 healthy: losing one more stops the cluster".to_string(), true));
        assert_eq!(
            quorum_words(3, 1),
            (
                "3 members, 1 healthy: quorum is lost, and the cluster cannot change until one more comes back"
                    .to_string(),
                true
            )
        );
        assert_eq!(quorum_words(5, 5), ("5 members, 5 healthy: two may fail".to_string(), false));
        assert!(!quorum_words(1, 1).1, "a single member is not a risk that changed");
        assert!(quorum_words(5, 2).0.ends_with("until one more comes back"));
        assert!(quorum_words(5, 1).0.ends_with("until two more come back"));
    }

    #[test]
    fn matchers_read_as_alertmanager_writes_them() {
        let m = Matcher::parse(" severity = warning ").unwrap();
        assert_eq!((m.name.as_str(), m.value.as_str(), m.is_equal, m.is_regex), ("severity", "warning", true, false));
        assert_eq!(Matcher::parse("instance=~\"10\\..*\"").unwrap().text(), "instance=~10\\..*");
        assert_eq!(Matcher::parse("job!=node").unwrap().text(), "job!=node");
        assert_eq!(Matcher::parse("job!~n.*").unwrap().text(), "job!~n.*");
        assert!(Matcher::parse("no operator").unwrap_err().contains("label=value"));
        assert!(Matcher::parse("bad name=x").is_err());
    }

    #[test]
    fn silence_durations_parse_and_bad_ones_say_how() {
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration(" 2h "), Ok(7_200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert!(parse_duration("2w").unwrap_err().contains("30m, 2h or 1d"));
        assert!(parse_duration("0m").unwrap_err().contains("between 1 minute and 30 days"));
        assert!(parse_duration("31d").is_err());
    }

    #[test]
    fn ranges_parse_from_presets_and_start_end_and_bad_ones_say_how() {
        assert_eq!(TimeRange::parse("1h"), Ok(TimeRange::Last { seconds: 3600 }));
        assert_eq!(TimeRange::parse("7d"), Ok(TimeRange::Last { seconds: 7 * 86_400 }));
        assert_eq!(TimeRange::parse("100..200"), Ok(TimeRange::Between { start: 100, end: 200 }));
        assert!(TimeRange::parse("200..100").unwrap_err().contains("end after it starts"));
        assert!(TimeRange::parse("0..9999999").unwrap_err().contains("31 days"));
        assert!(TimeRange::parse("2w").unwrap_err().contains("15m, 1h"));
        assert_eq!(TimeRange::Last { seconds: 900 }.bounds(1_000), (100, 1_000));
        assert_eq!(TimeRange::Last { seconds: 21_600 }.label(), "6h");
    }

    #[test]
    fn values_carry_their_units() {
        assert_eq!(Unit::Ratio.format(0.425), "42.5 %");
        assert_eq!(Unit::Bytes.format(1_288_490_188.8), "1.20 GiB");
        assert_eq!(Unit::Bytes.format(512.0), "512 B");
        assert_eq!(Unit::BytesPerSecond.format(2048.0), "2 KiB/s");
        assert_eq!(Unit::PerSecond.format(3.456), "3.46 /s");
        assert_eq!(Unit::Seconds.format(0.012), "12 ms");
        assert_eq!(Unit::Seconds.format(2.5), "2.50 s");
        assert_eq!(Unit::Count.format(150_000.0), "150000");
        assert_eq!(Unit::Count.format(f64::NAN), "–");
    }
}
