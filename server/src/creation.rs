//! Cluster creation: a cluster template (what a person asks for) becomes machines that install,
//! join and answer as a Kubernetes cluster Pangea registers.
//!
//! Built so far: the template, the cluster's PKI, the machines' Butane configs and the rule for
//! approving kubelet certificates. Not yet: serving the configs through the provisioner, the
//! creation job, the approver's watch, the pages and the API (issue 25; docs/clusters.md).

pub mod approval;
pub mod pki;
pub mod render;
pub mod template;
