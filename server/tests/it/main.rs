//! Pangea's integration tests, in one binary: linking one test binary of about 350 MB, not one
//! per file, is what an incremental test build on 2 cores spends most of its time on.
//!
//! Each file is a module, named after what it tests. `support` spawns a console over a fresh
//! database; `on_both_backends!` runs a scenario on SQLite and on PostgreSQL.
//!
//! # Tests that need a peer this machine may lack
//! A test that needs a kube-apiserver and etcd (`../shared/tools`) sits in a module named
//! `needs_kube`, so its full name holds `::needs_kube::`. Where there is none, `.ci/test` leaves
//! those tests out of the run with the nextest filter `not test(/::needs_kube::/)` and says how
//! many it left out and why: a test that cannot run is never counted as passed. Run by hand
//! without the filter, each such test prints one "skipped" line and returns; with
//! `PANGEA_KUBE_REQUIRED=1` (as in CI) it fails instead. The network-boot kit (`netboot`) and
//! Python's grpcio (`grpc`) are installed by `.ci/setup`, so `.ci/test` always runs those.

#[macro_use]
mod support;

mod access;
mod audit;
mod boots;
mod clusters;
mod console;
mod creation;
mod failover;
mod faults;
mod grafana;
mod grpc;
mod jobs;
mod leases;
mod machines_api;
mod monitoring;
mod netboot;
mod overview;
mod power;
mod process;
mod provisioner;
mod replicas;
mod rolling;
mod sso;
