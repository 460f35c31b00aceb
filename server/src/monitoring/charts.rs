//! The charts Pangea draws for a cluster and for a node: PromQL over the metrics kube-apiserver,
//! etcd and node_exporter publish under their usual names. `$__rate_interval` is filled in per
//! step; `$node` is a node's `instance` matcher.

use app::monitoring::Unit;

/// One chart: its lines are PromQL queries, each with a legend template (`{label}` is a label's
/// value).
pub struct ChartSpec {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    pub lines: &'static [(&'static str, &'static str)],
}

/// A cluster's health: capacity and pods, the API server, etcd.
pub const CLUSTER: &[ChartSpec] = &[
    ChartSpec {
        id: "cpu",
        title: "CPU used",
        unit: Unit::Ratio,
        lines: &[("all nodes", r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))"#)],
    },
    ChartSpec {
        id: "memory",
        title: "Memory",
        unit: Unit::Bytes,
        lines: &[
            ("used", "sum(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)"),
            ("total", "sum(node_memory_MemTotal_bytes)"),
        ],
    },
    ChartSpec {
        id: "pods",
        title: "Pods",
        unit: Unit::Count,
        lines: &[(
            "pods",
            r#"max(apiserver_resource_objects{resource="pods"}) or max(apiserver_storage_objects{resource="pods"})"#,
        )],
    },
    ChartSpec {
        id: "api_requests",
        title: "API requests",
        unit: Unit::PerSecond,
        lines: &[("{code}", "sum by (code) (rate(apiserver_request_total[$__rate_interval]))")],
    },
    ChartSpec {
        id: "api_errors",
        title: "API errors (5xx)",
        unit: Unit::PerSecond,
        lines: &[("5xx", r#"sum(rate(apiserver_request_total{code=~"5.."}[$__rate_interval])) or vector(0)"#)],
    },
    ChartSpec {
        id: "api_latency",
        title: "API latency (p99, without watches)",
        unit: Unit::Seconds,
        lines: &[(
            "p99",
            r#"histogram_quantile(0.99, sum by (le) (rate(apiserver_request_duration_seconds_bucket{verb!~"WATCH|CONNECT"}[$__rate_interval])))"#,
        )],
    },
    ChartSpec {
        id: "etcd_leader_changes",
        title: "etcd leader changes",
        unit: Unit::Count,
        lines: &[("{instance}", "increase(etcd_server_leader_changes_seen_total[$__rate_interval])")],
    },
    ChartSpec {
        id: "etcd_failed_proposals",
        title: "etcd failed proposals",
        unit: Unit::PerSecond,
        lines: &[("{instance}", "rate(etcd_server_proposals_failed_total[$__rate_interval])")],
    },
    ChartSpec {
        id: "etcd_db_size",
        title: "etcd database size",
        unit: Unit::Bytes,
        lines: &[("{instance}", "etcd_mvcc_db_total_size_in_bytes")],
    },
    ChartSpec {
        id: "etcd_fsync",
        title: "etcd WAL fsync (p99)",
        unit: Unit::Seconds,
        lines: &[(
            "{instance}",
            "histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket[$__rate_interval])))",
        )],
    },
];

/// One node, from node_exporter.
pub const NODE: &[ChartSpec] = &[
    ChartSpec {
        id: "cpu",
        title: "CPU used",
        unit: Unit::Ratio,
        lines: &[("cpu", r#"1 - avg(rate(node_cpu_seconds_total{mode="idle",$node}[$__rate_interval]))"#)],
    },
    ChartSpec {
        id: "memory",
        title: "Memory",
        unit: Unit::Bytes,
        lines: &[
            ("used", "sum(node_memory_MemTotal_bytes{$node} - node_memory_MemAvailable_bytes{$node})"),
            ("total", "sum(node_memory_MemTotal_bytes{$node})"),
        ],
    },
    ChartSpec {
        id: "filesystem",
        title: "Filesystem used",
        unit: Unit::Ratio,
        lines: &[(
            "{mountpoint}",
            r#"1 - max by (mountpoint) (node_filesystem_avail_bytes{$node,fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"} / node_filesystem_size_bytes{$node,fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"})"#,
        )],
    },
    ChartSpec {
        id: "network",
        title: "Network",
        unit: Unit::BytesPerSecond,
        lines: &[
            ("received", r#"sum(rate(node_network_receive_bytes_total{$node,device!="lo"}[$__rate_interval]))"#),
            ("sent", r#"sum(rate(node_network_transmit_bytes_total{$node,device!="lo"}[$__rate_interval]))"#),
        ],
    },
];

/// Characters with a meaning in a regular expression, escaped (twice: once for RE2, once for
/// the PromQL string).
pub fn regex_literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push_str(r"\\");
        }
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// node_exporter's series for a node: its `instance` is the node's name or one of its
/// addresses, with or without a port (kube-prometheus relabels it to the name; a static scrape
/// has the address).
pub fn node_matcher(name: &str, addresses: &[String]) -> String {
    let alternatives: Vec<String> =
        std::iter::once(name).chain(addresses.iter().map(String::as_str)).map(regex_literal).collect();
    format!(r#"instance=~"({})(:[0-9]+)?""#, alternatives.join("|"))
}

/// A chart line's query, ready for Prometheus.
pub fn expand(query: &str, rate_interval: &str, node: Option<&str>) -> String {
    let query = query.replace("$__rate_interval", rate_interval);
    match node {
        Some(matcher) => query.replace("$node", matcher),
        None => query,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_matches_by_name_or_address_with_dots_escaped() {
        let matcher = node_matcher("worker-1.example", &["10.0.0.7".into()]);
        assert_eq!(matcher, r#"instance=~"(worker-1\\.example|10\\.0\\.0\\.7)(:[0-9]+)?""#);
        let query = expand(NODE[0].lines[0].1, "60s", Some(&matcher));
        assert_eq!(
            query,
            r#"1 - avg(rate(node_cpu_seconds_total{mode="idle",instance=~"(worker-1\\.example|10\\.0\\.0\\.7)(:[0-9]+)?"}[60s]))"#
        );
    }

    #[test]
    fn every_chart_has_lines_and_no_placeholder_is_left_unfilled() {
        for spec in CLUSTER.iter().chain(NODE) {
            assert!(!spec.lines.is_empty(), "{}", spec.id);
            for (_, query) in spec.lines {
                let filled = expand(query, "60s", Some(r#"instance="x""#));
                assert!(!filled.contains('$'), "{filled}");
            }
        }
    }
}
