//! Cluster and node health as charts, from each cluster's own Prometheus: the time ranges people
//! pick, and the charts the server answers with.

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
    Bytes,
    BytesPerSecond,
    PerSecond,
    Seconds,
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
            Unit::Bytes => binary(value, ""),
            Unit::BytesPerSecond => binary(value, "/s"),
            Unit::PerSecond => format!("{} /s", short(value)),
            Unit::Seconds if value.abs() < 1.0 => format!("{} ms", short(value * 1000.0)),
            Unit::Seconds => format!("{} s", short(value)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
