//! Dashboards in Grafana's JSON model, drawn by Pangea against a cluster's Prometheus: what the
//! pages get from the server. The model is parsed and its queries run on the server.

use super::{Series, Unit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The value a variable has when "All" is chosen.
pub const ALL: &str = "$__all";

/// A dashboard Pangea can draw: shipped with Pangea, or imported by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DashboardSummary {
    pub uid: String,
    pub title: String,
    pub description: String,
    /// Shipped with Pangea (not removable), or imported.
    pub shipped: bool,
    /// Who imported it, and from where ("upload", or "grafana:CLUSTER"); '' when shipped.
    pub imported_by: String,
    pub origin: String,
}

/// How a panel is drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
pub enum PanelKind {
    Timeseries,
    Stat,
    Gauge,
    BarGauge,
    Table,
    /// A row's heading.
    Row,
    /// A panel type Pangea does not draw, by its Grafana name.
    Other(String),
}

/// A threshold step: from `value` up (`None` is the base), in a colour class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Threshold {
    pub value: Option<f64>,
    /// `ok`, `warn`, `bad` or `info`, from Grafana's colour.
    pub tone: String,
}

impl Threshold {
    /// The tone of `value` under `steps` (the last step it reaches), `info` without steps.
    pub fn tone_of(steps: &[Threshold], value: f64) -> &str {
        steps.iter().rev().find(|s| s.value.is_none_or(|v| value >= v)).map_or("info", |s| s.tone.as_str())
    }
}

/// A panel as the page lays it out; its queries stay on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PanelView {
    pub id: u32,
    pub title: String,
    pub description: String,
    pub kind: PanelKind,
    /// Columns of Grafana's 24-column grid the panel spans.
    pub width: u8,
    pub unit: Unit,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub thresholds: Vec<Threshold>,
    pub show_legend: bool,
}

/// A templating variable with the values it may take and the ones chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VariableView {
    pub name: String,
    pub label: String,
    pub options: Vec<String>,
    /// The chosen values; [`ALL`] for "All".
    pub current: Vec<String>,
    pub multi: bool,
    pub include_all: bool,
    /// A text box: the person types the value.
    pub typed: bool,
    /// Why its values could not be listed (the query failed), in words.
    pub error: Option<String>,
}

/// A dashboard ready to draw: its variables resolved and its panels in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DashboardView {
    pub uid: String,
    pub title: String,
    pub description: String,
    pub variables: Vec<VariableView>,
    pub panels: Vec<PanelView>,
    /// Where the dashboard opens in the cluster's Grafana, through the console's proxy, when
    /// one is linked.
    pub grafana_path: Option<String>,
    /// Why nothing can be drawn: no Prometheus is linked to the cluster.
    pub unavailable: Option<String>,
}

/// A panel's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PanelData {
    /// Lines over the range (timeseries).
    Series { start: i64, end: i64, series: Vec<Series> },
    /// One value per series (stat, gauge, bar gauge).
    Values { values: Vec<(String, f64)> },
    /// Labels and values as rows (table).
    Table { columns: Vec<String>, rows: Vec<Vec<String>> },
}

/// What the server answers for one panel: the panel, and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PanelAnswer {
    /// The panel answered for, as the dashboard lays it out.
    pub panel: PanelView,
    /// The PromQL asked, with variables and macros filled in.
    pub queries: Vec<String>,
    pub data: Option<PanelData>,
    /// Why there is no data, in words.
    pub error: Option<String>,
}

/// The chosen values of each variable, by name, as the page sends them.
pub type Choices = BTreeMap<String, Vec<String>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_kinds_and_data_read_back_as_written() {
        let kinds = [
            PanelKind::Timeseries,
            PanelKind::Stat,
            PanelKind::Gauge,
            PanelKind::BarGauge,
            PanelKind::Table,
            PanelKind::Row,
            PanelKind::Other("piechart".into()),
        ];
        for kind in kinds {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<PanelKind>(&json).unwrap(), kind, "{json}");
        }
        assert_eq!(serde_json::to_value(PanelKind::BarGauge).unwrap(), serde_json::json!({"type": "bar_gauge"}));
        let data = [
            PanelData::Series { start: 1, end: 2, series: vec![Series { legend: "a".into(), points: vec![(1, 0.5)] }] },
            PanelData::Values { values: vec![("up".into(), 1.0)] },
            PanelData::Table { columns: vec!["job".into()], rows: vec![vec!["node".into()]] },
        ];
        for d in data {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<PanelData>(&json).unwrap(), d, "{json}");
        }
        assert_eq!(
            serde_json::to_value(PanelData::Values { values: vec![("up".into(), 1.0)] }).unwrap(),
            serde_json::json!({"kind": "values", "values": [["up", 1.0]]})
        );
        let unknown = serde_json::from_str::<PanelKind>(r#"{"type":"piechart"}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown variant `piechart`"), "{unknown}");
        let missing = serde_json::from_str::<PanelData>(r#"{"kind":"table","columns":[]}"#).unwrap_err();
        assert!(missing.to_string().contains("missing field `rows`"), "{missing}");
    }

    #[test]
    fn a_value_takes_the_tone_of_the_last_step_it_reaches() {
        let steps = vec![
            Threshold { value: None, tone: "ok".into() },
            Threshold { value: Some(0.8), tone: "warn".into() },
            Threshold { value: Some(0.9), tone: "bad".into() },
        ];
        assert_eq!(Threshold::tone_of(&steps, 0.1), "ok");
        assert_eq!(Threshold::tone_of(&steps, 0.8), "warn");
        assert_eq!(Threshold::tone_of(&steps, 0.95), "bad");
        assert_eq!(Threshold::tone_of(&[], 5.0), "info");
    }
}
