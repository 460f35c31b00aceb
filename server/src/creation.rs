//! Cluster creation: a cluster template (what a person asks for) becomes machines that install,
//! join and answer as a Kubernetes cluster Pangea registers.
//!
//! Built so far: the template, the cluster's PKI and the machines' Butane configs. Not yet:
//! serving them through the provisioner, the creation job, the
//! pages and the API (issue 25; see docs/clusters.md).

pub mod pki;
pub mod render;
pub mod template;
