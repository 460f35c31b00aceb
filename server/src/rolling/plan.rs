//! A rolling operation's plan, from the cluster's nodes as they stand: which nodes, in what
//! order, and what stands in the way. Nothing here asks anything of a cluster or a machine.

use crate::clusters::selector::Selector;
use app::clusters::rolling::{Gate, PlannedStep, RollingInput, RollingNode, RollingPlan};
use app::error::AppError;
use std::collections::BTreeMap;

/// The label that makes a node part of the control plane (kubeadm's, and Pangea's own).
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
pub const CONTROL_PLANE: &str = "control-plane";
pub const WORKER: &str = "worker";

/// The longest soak a plan takes, in seconds.
pub const MAX_SOAK: u32 = 3600;
/// What an estimate counts for each step: draining it, and a server restarting (its firmware's
/// POST included) until its node is Ready again.
const DRAIN_ESTIMATE: u64 = 60;
const RESTART_ESTIMATE: u64 = 300;

/// A node of the cluster, as the plan sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Its inventory machine (id, MAC) and whether it has a BMC.
    pub machine: Option<(i64, String, bool)>,
}

/// The settings of `input`, each checked, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub max_unavailable: u32,
    pub soak_seconds: u32,
    pub alert_severities: Vec<String>,
}

pub fn settings(input: &RollingInput) -> Result<Settings, AppError> {
    let max_unavailable = input.max_unavailable.unwrap_or(1);
    if max_unavailable == 0 {
        return Err(AppError::invalid("max_unavailable must be at least 1: with 0, no node could ever be changed."));
    }
    let soak_seconds = input.soak_seconds.unwrap_or(60);
    if soak_seconds > MAX_SOAK {
        return Err(AppError::invalid(format!(
            "soak_seconds is at most {MAX_SOAK} (an hour); {soak_seconds} was given."
        )));
    }
    let alert_severities = input.alert_severities.clone().unwrap_or_else(|| vec!["critical".into()]);
    if alert_severities.is_empty() {
        return Err(AppError::invalid(
            "alert_severities names no severity: give at least one (critical, say), or leave it out for critical.",
        ));
    }
    if let Some(bad) = alert_severities
        .iter()
        .find(|s| s.is_empty() || s.len() > 32 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(AppError::invalid(format!(
            "\"{bad}\" is not an alert severity: write names such as critical or warning (letters, digits, - and _)."
        )));
    }
    Ok(Settings { max_unavailable, soak_seconds, alert_severities })
}

/// The plan for `candidates` (every node of `cluster`): the control-plane nodes one at a time,
/// then the workers `max_unavailable` at a time, each in name order; with the nodes as the
/// operation follows them.
pub fn plan(
    cluster: &str,
    input: &RollingInput,
    mut candidates: Vec<Candidate>,
    gates: Vec<Gate>,
) -> Result<(RollingPlan, Vec<RollingNode>), AppError> {
    let settings = settings(input)?;
    let selector = Selector::parse(input.nodes.as_deref())?;
    candidates.retain(|c| selector.matches(&c.labels));
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    let mut problems = Vec::new();
    if candidates.is_empty() {
        problems.push(match input.nodes.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(query) => format!("No node of {cluster} matches \"{query}\"."),
            None => format!("{cluster} has no nodes."),
        });
    }
    let mut nodes = Vec::new();
    for c in &candidates {
        let role = if c.labels.contains_key(CONTROL_PLANE_LABEL) { CONTROL_PLANE } else { WORKER };
        let (machine, mac) = match &c.machine {
            None => {
                problems.push(format!(
                    "{} matches no inventory machine (by system UUID or host name): Pangea cannot {} it.",
                    c.name,
                    input.change.words()
                ));
                (0, String::new())
            }
            Some((id, mac, false)) => {
                problems.push(format!(
                    "{}'s machine {mac} has no BMC: set one on the machine's page so Pangea can {} it.",
                    c.name,
                    input.change.words()
                ));
                (*id, mac.clone())
            }
            Some((id, mac, true)) => (*id, mac.clone()),
        };
        nodes.push(RollingNode { name: c.name.clone(), role: role.into(), machine, mac, step: "waiting".into() });
    }
    let mut steps: Vec<PlannedStep> = nodes
        .iter()
        .filter(|n| n.role == CONTROL_PLANE)
        .map(|n| PlannedStep { role: CONTROL_PLANE.into(), nodes: vec![n.name.clone()] })
        .collect();
    let workers: Vec<String> = nodes.iter().filter(|n| n.role == WORKER).map(|n| n.name.clone()).collect();
    steps.extend(
        workers
            .chunks(settings.max_unavailable as usize)
            .map(|chunk| PlannedStep { role: WORKER.into(), nodes: chunk.to_vec() }),
    );
    let estimate_seconds = steps.len() as u64 * (DRAIN_ESTIMATE + RESTART_ESTIMATE + u64::from(settings.soak_seconds));
    let plan = RollingPlan {
        cluster: cluster.into(),
        change: input.change,
        steps,
        max_unavailable: settings.max_unavailable,
        soak_seconds: settings.soak_seconds,
        gates,
        estimate_seconds,
        estimate_assumes: format!(
            "each step about {} min to drain and {} min for its servers to {} until their nodes are Ready, then \
             the {} s soak; a gate that holds adds its time",
            DRAIN_ESTIMATE / 60,
            RESTART_ESTIMATE / 60,
            input.change.words(),
            settings.soak_seconds
        ),
        problems,
    };
    Ok((plan, nodes))
}

/// `v1.36.2` (and `v1.36.2+vendor`) as (major, minor).
fn minor_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The API server the skew is checked against: the oldest of the control plane. `answered` is
/// the version the API server Pangea reaches says; `controllers` the versions Pangea installed on
/// each control-plane node (a created cluster's), which may differ while the control plane
/// changes one node at a time.
pub fn oldest_api_server(answered: &str, controllers: &[String]) -> String {
    let oldest = std::iter::once(answered)
        .chain(controllers.iter().map(String::as_str))
        .filter(|v| minor_version(v).is_some())
        .min_by_key(|v| {
            let mut parts = v.trim().trim_start_matches('v').split(['.', '+', '-']);
            let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
            (next(), next(), next())
        });
    oldest.unwrap_or(answered).to_string()
}

/// What installing kubelets of version `to` on nodes running `kubelets` (name, version) would
/// break of Kubernetes' version skew policy, beside an API server of `api_server`: kubelets are
/// never newer than the API server (its control plane changes first), nor more than three minor
/// versions older, and move one minor version at a time.
pub fn version_skew(api_server: &str, kubelets: &[(String, String)], to: &str) -> Vec<String> {
    let Some(target) = minor_version(to) else { return vec![format!("\"{to}\" is not a Kubernetes version.")] };
    let Some(api) = minor_version(api_server) else {
        return vec![
            "The API server's version is not known (Pangea does not reach it now), so the version skew cannot be \
             checked: try again once the cluster is live."
                .into(),
        ];
    };
    let mut problems = Vec::new();
    if target.0 != api.0 || target.1 > api.1 {
        problems.push(format!(
            "Kubelets are never newer than their API server ({api_server}): for {to}, the control plane changes first."
        ));
    } else if api.1 - target.1 > 3 {
        problems.push(format!(
            "{to} is more than three minor versions older than the API server ({api_server}); kubelets may be at \
             most three behind."
        ));
    }
    for (node, version) in kubelets {
        if let Some(now) = minor_version(version)
            && (now.0 != target.0 || now.1.abs_diff(target.1) > 1)
        {
            problems.push(format!(
                "{node} runs {version}: kubelets move one minor version at a time, so not straight to {to}."
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_oldest_api_server_of_the_control_plane_counts() {
        let controllers = ["v1.36.2".to_string(), "v1.35.4".to_string(), "v1.36.2".to_string()];
        assert_eq!(oldest_api_server("v1.36.2", &controllers), "v1.35.4");
        assert_eq!(oldest_api_server("v1.34.1", &controllers), "v1.34.1");
        assert_eq!(oldest_api_server("v1.36.2", &[]), "v1.36.2");
        assert_eq!(oldest_api_server("", &controllers), "v1.35.4", "not reached: Pangea's own records count");
        assert_eq!(oldest_api_server("v1.36.10", &["v1.36.9".into()]), "v1.36.9");
    }

    use super::*;
    use app::clusters::rolling::RollingChange;

    fn node(name: &str, control_plane: bool, machine: Option<(i64, &str, bool)>) -> Candidate {
        let mut labels = BTreeMap::from([("rack".to_string(), "r1".to_string())]);
        if control_plane {
            labels.insert(CONTROL_PLANE_LABEL.into(), String::new());
        }
        Candidate { name: name.into(), labels, machine: machine.map(|(id, mac, bmc)| (id, mac.to_string(), bmc)) }
    }

    fn input(nodes: Option<&str>, max_unavailable: Option<u32>) -> RollingInput {
        RollingInput {
            change: RollingChange::Restart,
            nodes: nodes.map(Into::into),
            max_unavailable,
            soak_seconds: Some(30),
            alert_severities: None,
            approve_control_plane: false,
            template: None,
        }
    }

    #[test]
    fn control_plane_nodes_go_one_at_a_time_before_the_workers() {
        let nodes = vec![
            node("w-3", false, Some((6, "m6", true))),
            node("cp-2", true, Some((2, "m2", true))),
            node("w-1", false, Some((4, "m4", true))),
            node("cp-1", true, Some((1, "m1", true))),
            node("w-2", false, Some((5, "m5", true))),
        ];
        let (planned, followed) = plan("edge", &input(None, Some(2)), nodes.clone(), vec![]).unwrap();
        let steps: Vec<(&str, Vec<&str>)> =
            planned.steps.iter().map(|s| (s.role.as_str(), s.nodes.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            steps,
            [
                ("control-plane", vec!["cp-1"]),
                ("control-plane", vec!["cp-2"]),
                ("worker", vec!["w-1", "w-2"]),
                ("worker", vec!["w-3"])
            ]
        );
        assert!(planned.problems.is_empty(), "{:?}", planned.problems);
        assert_eq!(planned.estimate_seconds, 4 * (60 + 300 + 30));
        assert_eq!(followed.len(), 5);
        // The workers only, by label query.
        let (workers, _) =
            plan("edge", &input(Some("!node-role.kubernetes.io/control-plane"), None), nodes, vec![]).unwrap();
        assert_eq!(workers.steps.len(), 3);
        assert!(workers.steps.iter().all(|s| s.role == WORKER && s.nodes.len() == 1));
    }

    #[test]
    fn what_cannot_be_changed_is_said_and_bad_settings_are_refused() {
        let nodes = vec![node("w-1", false, None), node("w-2", false, Some((5, "52:54:00:00:00:05", false)))];
        let (planned, _) = plan("edge", &input(None, None), nodes.clone(), vec![]).unwrap();
        assert_eq!(
            planned.problems,
            [
                "w-1 matches no inventory machine (by system UUID or host name): Pangea cannot restart it.",
                "w-2's machine 52:54:00:00:00:05 has no BMC: set one on the machine's page so Pangea can restart it."
            ]
        );
        let (unmatched, _) = plan("edge", &input(Some("rack=r9"), None), nodes.clone(), vec![]).unwrap();
        assert_eq!(unmatched.problems, ["No node of edge matches \"rack=r9\"."]);
        let zero = plan("edge", &input(None, Some(0)), nodes.clone(), vec![]).unwrap_err();
        assert_eq!(zero.status(), 400);
        assert!(zero.to_string().contains("at least 1"));
        assert_eq!(plan("edge", &input(Some("a=b=c"), None), nodes.clone(), vec![]).unwrap_err().status(), 400);
        let mut long = input(None, None);
        long.soak_seconds = Some(MAX_SOAK + 1);
        assert_eq!(plan("edge", &long, nodes.clone(), vec![]).unwrap_err().status(), 400);
        let mut severities = input(None, None);
        severities.alert_severities = Some(vec!["crit ical".into()]);
        assert!(plan("edge", &severities, nodes, vec![]).unwrap_err().to_string().contains("\"crit ical\""));
    }

    #[test]
    fn a_version_change_keeps_to_the_skew_policy() {
        let kubelets = [("w-1".to_string(), "v1.36.2".to_string()), ("w-2".to_string(), "v1.35.4".to_string())];
        assert!(version_skew("v1.36.2", &kubelets, "v1.36.3").is_empty());
        assert!(version_skew("v1.36.2+vendor.1", &kubelets, "v1.35.0").is_empty());
        let newer = version_skew("v1.36.2", &kubelets, "v1.37.0");
        assert_eq!(newer.len(), 2, "{newer:?}");
        assert!(newer[0].contains("never newer than their API server (v1.36.2)"), "{newer:?}");
        assert_eq!(
            newer[1],
            "w-2 runs v1.35.4: kubelets move one minor version at a time, so not straight to v1.37.0."
        );
        let two_down = version_skew("v1.36.2", &kubelets, "v1.34.0");
        assert_eq!(
            two_down,
            ["w-1 runs v1.36.2: kubelets move one minor version at a time, so not straight to v1.34.0."]
        );
        assert!(version_skew("v1.36.2", &[], "v1.32.9")[0].contains("more than three minor versions older"));
        assert!(version_skew("", &kubelets, "v1.36.2")[0].contains("not known"));
        assert!(version_skew("v1.36.2", &[], "2.0")[0].contains("never newer"));
    }
}
