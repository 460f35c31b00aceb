//! Configuration: flags, then `PANGEA_*` environment variables, then an optional TOML file,
//! then defaults. Parsed once into [`Config`]; secrets stay in `SecretString`.

use clap::{Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "pangea", version, about = "Pangea: a console for Kubernetes on your own hardware")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the console and the boot endpoints (the default when no subcommand is given).
    Serve(Box<ServeArgs>),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Break-glass administration of local accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Role bindings.
    #[command(subcommand)]
    Access(AccessCommand),
    /// Profiles, groups and templates: Matchbox data directories in and out.
    #[command(subcommand)]
    Provisioner(ProvisionerCommand),
    /// Register, list and remove Kubernetes clusters.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The secret keys that seal credentials at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Set, show and remove machines' BMCs, and power machines through them.
    #[command(subcommand)]
    Bmc(BmcCommand),
}

#[derive(Debug, Subcommand)]
pub enum BmcCommand {
    /// Set a machine's BMC once it checks out (reachable, the credentials accepted, one system),
    /// then read its hardware. The password is read from PANGEA_BMC_PASSWORD, never from a flag.
    Set {
        #[command(flatten)]
        storage: StorageArgs,
        /// The machine's MAC.
        mac: String,
        /// The BMC's Redfish URL: https://host[:port], or with the system's path,
        /// https://host/redfish/v1/Systems/ID, when the BMC has several.
        #[arg(long)]
        url: String,
        /// The BMC user Pangea signs in as.
        #[arg(long)]
        user: String,
        /// A PEM CA bundle the BMC's certificate must chain to [default: the system's roots].
        #[arg(long, conflicts_with = "verify_off")]
        ca_file: Option<PathBuf>,
        /// Accept any certificate (not advised: shown as a warning wherever the BMC is).
        #[arg(long)]
        verify_off: bool,
    },
    /// Show a machine's BMC, its power and its hardware as last read.
    Show {
        #[command(flatten)]
        storage: StorageArgs,
        mac: String,
    },
    /// Forget a machine's BMC.
    Remove {
        #[command(flatten)]
        storage: StorageArgs,
        mac: String,
    },
    /// Ask a machine's BMC for a power action, and wait until the machine reaches the state asked
    /// for, or 180 s pass.
    Power {
        #[command(flatten)]
        storage: StorageArgs,
        mac: String,
        /// on, graceful_shutdown, force_off, graceful_restart, force_restart, power_cycle or
        /// network_boot_once.
        action: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-seal every sealed value (cluster and source credentials, IdP refresh tokens) under a
    /// new key, in one transaction, audited. With the key file (no PANGEA_SECRET_KEY), a new key
    /// is made and put first in it, the old ones kept after it; running servers read it again
    /// when they meet the new key. With PANGEA_SECRET_KEY, put the new key first yourself
    /// (NEW,OLD on every replica) and run this to re-seal under it.
    Rotate(StorageArgs),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register a cluster after checking its API server, Pangea's credentials and their right
    /// to impersonate. The token is read from PANGEA_CLUSTER_TOKEN, never from a flag.
    Add {
        #[command(flatten)]
        storage: StorageArgs,
        /// The cluster's name in Pangea (a DNS label, e.g. edge-1).
        name: String,
        /// With --kubeconfig: its context to use [default: the current context].
        #[arg(long)]
        context: Option<String>,
        /// Read the server, CA and credentials from this kubeconfig (inline data only).
        #[arg(long, conflicts_with_all = ["server", "ca_file"])]
        kubeconfig: Option<PathBuf>,
        /// The API server's URL, e.g. https://10.0.0.10:6443.
        #[arg(long, required_unless_present = "kubeconfig")]
        server: Option<String>,
        /// The CA bundle (PEM) that signed the API server's certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Apply a cluster template (YAML): check it against the inventory, then write every
    /// machine's configs and start the creation, which the running Pangea server carries on
    /// (powering the machines on, following them, registering the cluster).
    Create {
        #[command(flatten)]
        storage: StorageArgs,
        /// The template file.
        file: PathBuf,
        /// Only show what it would do.
        #[arg(long)]
        dry_run: bool,
        /// URL machines reach the boot listener at, as the server's --boot-url
        /// [default: the config file's boot_url; needed unless --dry-run].
        #[arg(long, env = "PANGEA_BOOT_URL")]
        boot_url: Option<url::Url>,
    },
    /// Show how a cluster's creation goes, machine by machine.
    Creation {
        #[command(flatten)]
        storage: StorageArgs,
        name: String,
    },
    /// Print the template a cluster was created from, to edit and apply again.
    Template {
        #[command(flatten)]
        storage: StorageArgs,
        name: String,
    },
    /// Destroy a cluster Pangea created: unregister it, remove its machines' configs and
    /// secrets, free its machines and power them off. The audit trail stays.
    Destroy {
        #[command(flatten)]
        storage: StorageArgs,
        name: String,
        /// The cluster's name again.
        #[arg(long)]
        confirm: String,
    },
    /// List registered clusters.
    List(StorageArgs),
    /// Remove a cluster.
    Remove {
        #[command(flatten)]
        storage: StorageArgs,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvisionerCommand {
    /// Import a Matchbox data directory (profiles/, groups/, ignition/, generic/): every file is
    /// checked first, then all are written in one transaction, or none.
    Import {
        #[command(flatten)]
        storage: StorageArgs,
        /// The Matchbox data directory.
        dir: PathBuf,
        /// Only check and show what would be imported.
        #[arg(long)]
        dry_run: bool,
        /// Copy DIR/assets into the assets directory (files already there are kept).
        #[arg(long)]
        copy_assets: bool,
        /// Where assets are served from [default: DATA_DIR/assets]
        #[arg(long, env = "PANGEA_ASSETS_DIR")]
        assets_dir: Option<PathBuf>,
    },
    /// Write profiles, groups and templates as a Matchbox data directory into an empty folder.
    Export {
        #[command(flatten)]
        storage: StorageArgs,
        dir: PathBuf,
    },
    /// Make a CA, a server certificate and a client certificate for the gRPC API (ca.crt,
    /// ca.key, server.crt, server.key, client.crt, client.key, as Matchbox's cert-gen).
    Certs {
        /// The folder to write them into; existing files are never replaced.
        dir: PathBuf,
        /// A DNS name or IP address clients reach the gRPC API at (repeat for more).
        #[arg(long = "server-name", required = true)]
        server_names: Vec<String>,
        /// The client certificate's common name: the actor in the audit log (`cert:NAME`).
        #[arg(long, default_value = "terraform")]
        client_name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once.
    Create {
        #[command(flatten)]
        storage: StorageArgs,
        /// A name saying what the token is for, e.g. ci-deploy.
        #[arg(long)]
        name: String,
        /// admin, operator or viewer.
        #[arg(long, value_parser = app::access::ConsoleRole::parse)]
        role: app::access::ConsoleRole,
        /// Lifetime such as 30d, 12h or 90m [default: never expires]
        #[arg(long, value_parser = crate::access::parse_expiry)]
        expires: Option<Duration>,
        /// The Kubernetes user Pangea acts as for this token in clusters
        /// [default: pangea:token:NAME in the group pangea:api-tokens]
        #[arg(long, default_value = "", hide_default_value = true)]
        cluster_user: String,
        /// A Kubernetes group of that user (repeat for several).
        #[arg(long = "cluster-group")]
        cluster_groups: Vec<String>,
    },
    /// List tokens (never their secret part).
    List(StorageArgs),
    /// Revoke a token by id.
    Revoke {
        #[command(flatten)]
        storage: StorageArgs,
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Bind an IdP group (or, with --user, one user) to a console role.
    Bind {
        #[command(flatten)]
        storage: StorageArgs,
        /// The group (or user name) to bind.
        subject: String,
        /// admin, operator or viewer.
        #[arg(long, value_parser = app::access::ConsoleRole::parse)]
        role: app::access::ConsoleRole,
        /// Bind a single user instead of a group.
        #[arg(long)]
        user: bool,
        /// Bind the role on this cluster only (viewer or operator).
        #[arg(long)]
        cluster: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set a new password for a local user (default: admin) and print it; re-enables the user.
    ResetPassword {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long, default_value = "admin")]
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's keyed hash chain; exits 1 naming the first broken record.
    Verify {
        #[command(flatten)]
        storage: StorageArgs,
        /// Also check against a checkpoint that `pangea audit checkpoint` wrote.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Print a signed checkpoint of the chain's head (count, head hash, time) as JSON: keep it
    /// outside the database, and check it later with `verify --checkpoint FILE`.
    Checkpoint(StorageArgs),
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Where the data lives; shared by every subcommand that touches the database.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StorageArgs {
    /// A TOML file with any of the options below (names as in the flags, with underscores).
    #[arg(long, env = "PANGEA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and other data [default: ./pangea-data]
    #[arg(long, env = "PANGEA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB, without a password (the process list shows
    /// flags): a URL with one goes in PANGEA_DATABASE_URL or --database-url-file
    /// [default: sqlite inside the data dir]
    #[arg(long)]
    pub database_url: Option<SecretString>,
    /// A file holding the database URL (password included), e.g. a mounted secret.
    #[arg(long, env = "PANGEA_DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Parser)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address of the console (GUI and API) [default: 127.0.0.1:3000]
    #[arg(long, env = "PANGEA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address machines boot from (iPXE, Ignition) [default: 127.0.0.1:8080]
    #[arg(long, env = "PANGEA_BOOT_LISTEN")]
    pub boot_listen: Option<SocketAddr>,
    /// URL machines reach the boot listener at, written into the configs of clusters Pangea
    /// creates (Typhoon's matchbox_http_endpoint) [default: http://BOOT_LISTEN]
    #[arg(long, env = "PANGEA_BOOT_URL")]
    pub boot_url: Option<url::Url>,
    /// Address of Matchbox's gRPC API (for terraform-provider-matchbox), TLS with client
    /// certificates only; needs --rpc-cert-file, --rpc-key-file and --rpc-ca-file [default: off]
    #[arg(long, env = "PANGEA_RPC_LISTEN")]
    pub rpc_listen: Option<SocketAddr>,
    /// PEM certificate of the gRPC listener.
    #[arg(long, env = "PANGEA_RPC_CERT_FILE")]
    pub rpc_cert_file: Option<PathBuf>,
    /// PEM private key of the gRPC listener (a file: never logged).
    #[arg(long, env = "PANGEA_RPC_KEY_FILE")]
    pub rpc_key_file: Option<PathBuf>,
    /// PEM CA that gRPC clients' certificates must be signed by.
    #[arg(long, env = "PANGEA_RPC_CA_FILE")]
    pub rpc_ca_file: Option<PathBuf>,
    /// PEM revocation lists of that CA: revoked client certificates fail the TLS handshake.
    #[arg(long, env = "PANGEA_RPC_CRL_FILE")]
    pub rpc_crl_file: Option<PathBuf>,
    /// Files machines fetch from the boot listener under /assets/ (kernels, initrds, images)
    /// [default: DATA_DIR/assets]
    #[arg(long, env = "PANGEA_ASSETS_DIR")]
    pub assets_dir: Option<PathBuf>,
    /// Boot events kept per machine [default: 200]
    #[arg(long, env = "PANGEA_BOOT_EVENTS_PER_MACHINE")]
    pub boot_events_per_machine: Option<u32>,
    /// Days boot events (and discovered machines not seen since) are kept [default: 30]
    #[arg(long, env = "PANGEA_BOOT_EVENTS_DAYS")]
    pub boot_events_days: Option<u32>,
    /// At most this many discovered machines; unknown MACs beyond it are ignored [default: 1000]
    #[arg(long, env = "PANGEA_DISCOVERED_LIMIT")]
    pub discovered_limit: Option<u32>,
    /// Boot requests a second one source address may make, in bursts of twice that; more are
    /// answered 429. 0: no limit [default: 100]
    #[arg(long, env = "PANGEA_BOOT_REQUESTS_PER_ADDRESS")]
    pub boot_requests_per_address: Option<u32>,
    /// Boot requests a second for one MAC, in bursts of twice that; 0: no limit [default: 20]
    #[arg(long, env = "PANGEA_BOOT_REQUESTS_PER_MAC")]
    pub boot_requests_per_mac: Option<u32>,
    /// Log output [default: human]
    #[arg(long, env = "PANGEA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Directory with the built site (pkg/, CSS, favicon), for development [default: the site
    /// inside a release binary, unpacked into DATA_DIR/site; else target/site]
    #[arg(long, env = "LEPTOS_SITE_ROOT")]
    pub site_root: Option<PathBuf>,
    /// The URL people reach the console at; cookies are Secure when it is https [default: http://LISTEN]
    #[arg(long, env = "PANGEA_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Turn off the local (password) sign-in; only single sign-on remains
    #[arg(long, env = "PANGEA_DISABLE_LOCAL_LOGIN")]
    pub disable_local_login: bool,
    /// Sign a session out after this long without a request, e.g. 8h [default: 8h]
    #[arg(long, env = "PANGEA_SESSION_IDLE_TIMEOUT", value_parser = crate::access::parse_expiry)]
    pub session_idle_timeout: Option<Duration>,
    /// Sign a session out this long after sign-in, whatever it does, e.g. 24h [default: 24h]
    #[arg(long, env = "PANGEA_SESSION_ABSOLUTE_TIMEOUT", value_parser = crate::access::parse_expiry)]
    pub session_absolute_timeout: Option<Duration>,
    /// How long a running job's lease lasts, in seconds: a job whose replica dies is taken over
    /// by another replica this long (and a third more) after its last renewal [default: 15]
    #[arg(long, env = "PANGEA_JOB_LEASE_SECONDS", value_parser = clap::value_parser!(u64).range(3..=300))]
    pub job_lease_seconds: Option<u64>,
    /// How long Pangea waits for a machine to reach the power state it asked its BMC for, in
    /// seconds; servers that take long to start (their firmware's self-test) need more [default: 180]
    #[arg(long, env = "PANGEA_POWER_SETTLE_SECONDS", value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub power_settle_seconds: Option<u64>,
    /// An IdP group bound to the admin role at start-up (once; edit it later on the Access page)
    #[arg(long, env = "PANGEA_BOOTSTRAP_ADMIN_GROUP")]
    pub bootstrap_admin_group: Option<String>,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For names
    /// the client; from anyone else the header is ignored [default: none]
    #[arg(long, env = "PANGEA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ProxyRange>,
    /// Allow monitoring links (Prometheus, Alertmanager, Grafana) to loopback and link-local
    /// addresses. Off by default: Pangea calls those links itself with its own credentials, so
    /// an admin's link to 127.0.0.1 or 169.254.169.254 (a cloud's metadata service) would reach
    /// whatever listens on Pangea's own host. Turn on only for a Prometheus on the same host.
    #[arg(long, env = "PANGEA_ALLOW_LOCAL_MONITORING_URLS")]
    pub allow_local_monitoring_urls: bool,
    /// Address of the clusters' Grafanas, served on an origin of their own: the console hands a
    /// person's sign-in over with a one-time code, and Grafana's scripts never run beside the
    /// console's session [default: off; the Dashboards page then lists but does not embed]
    #[arg(long, env = "PANGEA_GRAFANA_LISTEN")]
    pub grafana_listen: Option<SocketAddr>,
    /// The URL people reach --grafana-listen at: another host name than the console's, e.g.
    /// https://grafana.pangea.example.com beside https://pangea.example.com [default: http://GRAFANA_LISTEN]
    #[arg(long, env = "PANGEA_GRAFANA_PUBLIC_URL")]
    pub grafana_public_url: Option<url::Url>,
    /// Serve the clusters' Grafanas on the console's own origin (/grafana/CLUSTER/), as before
    /// --grafana-listen. Not advised: any script in Grafana (an HTML panel, a plugin, a Grafana
    /// bug) can then call the console's API as the person looking at it.
    #[arg(long, env = "PANGEA_GRAFANA_SAME_ORIGIN", conflicts_with = "grafana_listen")]
    pub grafana_same_origin: bool,
    /// How often every machine's BMC is asked for its power, in seconds [default: 60]
    #[arg(long, env = "PANGEA_POWER_REFRESH_SECONDS", value_parser = clap::value_parser!(u64).range(5..=86400))]
    pub power_refresh_seconds: Option<u64>,
    /// How often every machine's BMC is asked for its hardware, in seconds [default: 3600]
    #[arg(long, env = "PANGEA_HARDWARE_REFRESH_SECONDS", value_parser = clap::value_parser!(u64).range(60..=604800))]
    pub hardware_refresh_seconds: Option<u64>,
    /// OpenID provider's issuer URL, for single sign-on (discovery finds the rest)
    #[arg(long, env = "PANGEA_OIDC_ISSUER")]
    pub oidc_issuer: Option<url::Url>,
    /// The client id Pangea is registered under at the provider
    #[arg(long, env = "PANGEA_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// A file holding the client secret (or set PANGEA_OIDC_CLIENT_SECRET; never a flag)
    #[arg(long, env = "PANGEA_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// Extra scopes to request, comma-separated (openid, email, profile, groups and
    /// offline_access are requested when the provider offers them)
    #[arg(long, env = "PANGEA_OIDC_SCOPES", value_delimiter = ',')]
    pub oidc_scopes: Vec<String>,
    /// The claim that names the user [default: email]
    #[arg(long, env = "PANGEA_OIDC_USERNAME_CLAIM")]
    pub oidc_username_claim: Option<String>,
    /// The claim that lists the user's groups [default: groups]
    #[arg(long, env = "PANGEA_OIDC_GROUPS_CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// How often a signed-in session checks with the IdP (by its refresh token) that the person
    /// may still sign in, e.g. 5m [default: 5m]
    #[arg(long, env = "PANGEA_OIDC_REFRESH_INTERVAL", value_parser = crate::access::parse_expiry)]
    pub oidc_refresh_interval: Option<Duration>,
}

/// The options a TOML file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    oidc_issuer: Option<url::Url>,
    oidc_client_id: Option<String>,
    oidc_client_secret_file: Option<PathBuf>,
    oidc_scopes: Option<Vec<String>>,
    oidc_username_claim: Option<String>,
    oidc_groups_claim: Option<String>,
    oidc_refresh_interval: Option<String>,
    public_url: Option<url::Url>,
    disable_local_login: Option<bool>,
    session_idle_timeout: Option<String>,
    session_absolute_timeout: Option<String>,
    bootstrap_admin_group: Option<String>,
    trusted_proxies: Option<Vec<ProxyRange>>,
    allow_local_monitoring_urls: Option<bool>,
    grafana_listen: Option<SocketAddr>,
    grafana_public_url: Option<url::Url>,
    grafana_same_origin: Option<bool>,
    power_refresh_seconds: Option<u64>,
    hardware_refresh_seconds: Option<u64>,
    data_dir: Option<PathBuf>,
    database_url: Option<SecretString>,
    database_url_file: Option<PathBuf>,
    listen: Option<SocketAddr>,
    boot_listen: Option<SocketAddr>,
    boot_url: Option<url::Url>,
    rpc_listen: Option<SocketAddr>,
    rpc_cert_file: Option<PathBuf>,
    rpc_key_file: Option<PathBuf>,
    rpc_crl_file: Option<PathBuf>,
    rpc_ca_file: Option<PathBuf>,
    assets_dir: Option<PathBuf>,
    boot_events_per_machine: Option<u32>,
    boot_events_days: Option<u32>,
    discovered_limit: Option<u32>,
    boot_requests_per_address: Option<u32>,
    boot_requests_per_mac: Option<u32>,
    log_format: Option<LogFormat>,
    site_root: Option<PathBuf>,
}

/// An address or CIDR range, such as `10.0.0.0/8` or `::1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRange {
    network: std::net::IpAddr,
    prefix: u8,
}

impl<'de> Deserialize<'de> for ProxyRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ProxyRange, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for ProxyRange {
    type Err = String;
    fn from_str(text: &str) -> Result<ProxyRange, String> {
        let bad = || format!("\"{text}\" is not an address or CIDR range such as 10.0.0.0/8");
        let (addr, prefix) = text.trim().split_once('/').map_or((text.trim(), None), |(a, p)| (a, Some(p)));
        let network: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= bits).ok_or_else(bad)?,
            None => bits,
        };
        Ok(ProxyRange { network, prefix })
    }
}

impl ProxyRange {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let (net, ip, bits) = match (self.network, ip.to_canonical()) {
            (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= 128 || (net >> shift) == (ip >> shift)
    }
}

/// The resolved configuration of `pangea serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub boot_listen: SocketAddr,
    /// Where machines reach the boot listener, without a final `/`.
    pub boot_url: String,
    pub data_dir: PathBuf,
    /// Served under /assets/ on the boot listener.
    pub assets_dir: PathBuf,
    /// How much boot history is kept.
    pub boot_retention: crate::provisioner::boots::Retention,
    /// Matchbox's gRPC API: where, and its TLS (client certificates required).
    pub grpc: Option<(SocketAddr, crate::provisioner::grpc::GrpcTls)>,
    pub database_url: SecretString,
    pub log_format: LogFormat,
    /// Where the site's files are served from.
    pub site_root: PathBuf,
    /// The site is the one inside this binary, to be unpacked into `site_root` on start.
    pub site_embedded: bool,
    pub public_url: url::Url,
    pub local_login_enabled: bool,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    /// How often an open live stream checks that its person may still watch it (not a flag:
    /// tests shorten it).
    pub live_recheck_every: Duration,
    /// How long a running job's lease lasts without renewal: after it, another replica takes a
    /// job whose replica died over.
    pub job_lease: Duration,
    /// How long a machine may take to reach the power state asked of its BMC.
    pub power_settle: Duration,
    pub bootstrap_admin_group: Option<String>,
    pub trusted_proxies: Vec<ProxyRange>,
    /// Monitoring links may go to loopback and link-local addresses.
    pub allow_local_monitoring_urls: bool,
    /// Where browsers reach the clusters' Grafanas.
    pub grafana: GrafanaPlacement,
    /// How often every machine's BMC is asked for its power.
    pub power_refresh: Duration,
    /// How often every machine's BMC is asked for its hardware.
    pub hardware_refresh: Duration,
    /// The local admin's first password, from `PANGEA_BOOTSTRAP_PASSWORD` only (never a flag,
    /// which would show in the process list).
    pub bootstrap_password: Option<SecretString>,
    /// Single sign-on, when an issuer is configured.
    pub oidc: Option<crate::access::sso::OidcSettings>,
    /// Seals secrets at rest, from `PANGEA_SECRET_KEY` only; else a key file in the data dir.
    pub secret_key: Option<SecretString>,
    /// Keys the audit chain, from `PANGEA_AUDIT_KEY` only; else derived from the secret key.
    pub audit_key: Option<SecretString>,
}

/// Where browsers reach the clusters' Grafanas (`/grafana/CLUSTER/…`, through the auth proxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrafanaPlacement {
    /// Nowhere: the Dashboards page lists a Grafana's dashboards but does not embed them.
    Off,
    /// On a listener of its own, which people reach at `public_url` (another origin).
    OwnOrigin { listen: SocketAddr, public_url: url::Url },
    /// On the console's own origin (`--grafana-same-origin`, not advised).
    SameOrigin,
}

impl GrafanaPlacement {
    /// The origin of its own listener, when it has one.
    pub fn own_origin(&self) -> Option<String> {
        match self {
            GrafanaPlacement::OwnOrigin { public_url, .. } => Some(public_url.origin().ascii_serialization()),
            _ => None,
        }
    }
}

/// A secret that comes from the environment only (never a flag, which the process list shows).
fn secret_from_env(name: &str) -> Option<SecretString> {
    std::env::var(name).ok().filter(|k| !k.is_empty()).map(SecretString::from)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0} is not valid: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("data directory {0} is not valid UTF-8")]
    DataDirNotUtf8(PathBuf),
    #[error("{0} in the config file: {1}")]
    Value(&'static str, String),
    #[error("single sign-on: {0}")]
    Oidc(String),
    #[error("{0} must not hold a password (other users can read flags in the process list); use {1}")]
    SecretInFlag(&'static str, &'static str),
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse(path.into(), e))
}

impl StorageArgs {
    /// The boot URL the config file gives, if any.
    pub fn boot_url(&self) -> Result<Option<url::Url>, ConfigError> {
        Ok(self.file()?.boot_url)
    }

    fn file(&self) -> Result<FileConfig, ConfigError> {
        self.config.as_deref().map(read_file).transpose().map(Option::unwrap_or_default)
    }

    /// The data directory, resolved as `pangea serve` resolves it.
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        Ok(self.data_dir.clone().or(self.file()?.data_dir).unwrap_or_else(|| "pangea-data".into()))
    }

    /// The sealer and audit chain key, loaded as `pangea serve` loads them: a command that
    /// writes audit records must use the server's keys.
    pub fn keys(&self) -> Result<(crate::secrets::Sealer, crate::secrets::ChainKey), String> {
        let data_dir = self.data_dir().map_err(|e| e.to_string())?;
        crate::secrets::load_keys(
            secret_from_env("PANGEA_SECRET_KEY").as_ref(),
            secret_from_env("PANGEA_AUDIT_KEY").as_ref(),
            &data_dir,
        )
        .map_err(|e| e.to_string())
    }

    /// The database this command works on, resolved as `pangea serve` resolves it.
    pub fn database_url(&self) -> Result<SecretString, ConfigError> {
        let file = self.file()?;
        let data_dir = self.data_dir.clone().or(file.data_dir).unwrap_or_else(|| "pangea-data".into());
        if let Some(url) = &self.database_url
            && url::Url::parse(url.expose_secret()).is_ok_and(|u| u.password().is_some())
        {
            return Err(ConfigError::SecretInFlag("--database-url", "PANGEA_DATABASE_URL or --database-url-file"));
        }
        let from_file = match self.database_url_file.as_ref().or(file.database_url_file.as_ref()) {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map(|s| SecretString::from(s.trim().to_string()))
                    .map_err(|e| ConfigError::Read(path.clone(), e))?,
            ),
            None => None,
        };
        match self.database_url.clone().or(secret_from_env("PANGEA_DATABASE_URL")).or(from_file).or(file.database_url) {
            Some(url) => Ok(url),
            None => default_database_url(&data_dir),
        }
    }
}

/// `sqlite://DIR/pangea.db`, created on first start.
pub fn default_database_url(data_dir: &Path) -> Result<SecretString, ConfigError> {
    let dir = data_dir.to_str().ok_or_else(|| ConfigError::DataDirNotUtf8(data_dir.into()))?;
    Ok(SecretString::from(format!("sqlite://{dir}/pangea.db?mode=rwc")))
}

impl ServeArgs {
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let database_url = self.storage.database_url()?;
        let file = self.storage.file()?;
        let data_dir = self.storage.data_dir.or(file.data_dir).unwrap_or_else(|| "pangea-data".into());
        let site_root = self.site_root.or(file.site_root);
        let listen = self.listen.or(file.listen).unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3000)));
        let boot_listen = self.boot_listen.or(file.boot_listen).unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        let duration = |flag: Option<Duration>, file: Option<String>, key, default| match (flag, file) {
            (Some(d), _) => Ok(d),
            (None, Some(text)) => crate::access::parse_expiry(&text).map_err(|e| ConfigError::Value(key, e)),
            (None, None) => Ok(default),
        };
        let public_url = match self.public_url.or(file.public_url) {
            Some(url) => url,
            None => {
                url::Url::parse(&format!("http://{listen}")).map_err(|e| ConfigError::Value("listen", e.to_string()))?
            }
        };
        let grafana = match (
            self.grafana_listen.or(file.grafana_listen),
            self.grafana_same_origin || file.grafana_same_origin.unwrap_or(false),
        ) {
            (Some(_), true) => {
                return Err(ConfigError::Value(
                    "grafana_listen",
                    "give either --grafana-listen (advised) or --grafana-same-origin, not both".into(),
                ));
            }
            (Some(listen), false) => {
                let grafana_url = match self.grafana_public_url.or(file.grafana_public_url) {
                    Some(url) => url,
                    None => url::Url::parse(&format!("http://{listen}"))
                        .map_err(|e| ConfigError::Value("grafana_listen", e.to_string()))?,
                };
                if grafana_url.origin() == public_url.origin() {
                    return Err(ConfigError::Value(
                        "grafana_public_url",
                        "Grafana's public URL must be another origin than the console's (another host name, \
                         e.g. grafana.pangea.example.com)"
                            .into(),
                    ));
                }
                GrafanaPlacement::OwnOrigin { listen, public_url: grafana_url }
            }
            (None, true) => GrafanaPlacement::SameOrigin,
            (None, false) => GrafanaPlacement::Off,
        };
        let oidc = match self.oidc_issuer.or(file.oidc_issuer) {
            None => None,
            Some(issuer) => {
                let client_id = self
                    .oidc_client_id
                    .or(file.oidc_client_id)
                    .ok_or_else(|| ConfigError::Oidc("--oidc-issuer needs --oidc-client-id".into()))?;
                let client_secret = match (
                    std::env::var("PANGEA_OIDC_CLIENT_SECRET").ok().filter(|s| !s.is_empty()),
                    self.oidc_client_secret_file.or(file.oidc_client_secret_file),
                ) {
                    (Some(secret), _) => SecretString::from(secret),
                    (None, Some(path)) => std::fs::read_to_string(&path)
                        .map(|s| SecretString::from(s.trim().to_string()))
                        .map_err(|e| ConfigError::Read(path, e))?,
                    (None, None) => {
                        return Err(ConfigError::Oidc(
                            "set PANGEA_OIDC_CLIENT_SECRET or --oidc-client-secret-file for the client secret".into(),
                        ));
                    }
                };
                let join = |path: &str| public_url.join(path).map_err(|e| ConfigError::Oidc(e.to_string()));
                Some(crate::access::sso::OidcSettings {
                    issuer,
                    client_id,
                    client_secret,
                    redirect_url: join("/auth/oidc/callback")?,
                    post_logout_url: join("/login?signed_out=1")?,
                    extra_scopes: if self.oidc_scopes.is_empty() {
                        file.oidc_scopes.unwrap_or_default()
                    } else {
                        self.oidc_scopes
                    },
                    username_claim: self
                        .oidc_username_claim
                        .or(file.oidc_username_claim)
                        .unwrap_or_else(|| "email".into()),
                    groups_claim: self.oidc_groups_claim.or(file.oidc_groups_claim).unwrap_or_else(|| "groups".into()),
                    refresh_every: duration(
                        self.oidc_refresh_interval,
                        file.oidc_refresh_interval,
                        "oidc_refresh_interval",
                        Duration::from_secs(300),
                    )?,
                })
            }
        };
        Ok(Config {
            oidc,
            secret_key: secret_from_env("PANGEA_SECRET_KEY"),
            audit_key: secret_from_env("PANGEA_AUDIT_KEY"),
            session_idle_timeout: duration(
                self.session_idle_timeout,
                file.session_idle_timeout,
                "session_idle_timeout",
                Duration::from_secs(8 * 3600),
            )?,
            session_absolute_timeout: duration(
                self.session_absolute_timeout,
                file.session_absolute_timeout,
                "session_absolute_timeout",
                Duration::from_secs(24 * 3600),
            )?,
            live_recheck_every: crate::http::live::RECHECK_EVERY,
            job_lease: self.job_lease_seconds.map_or(crate::jobs::LEASE, Duration::from_secs),
            power_settle: self.power_settle_seconds.map_or(crate::power::SETTLE, Duration::from_secs),
            local_login_enabled: !(self.disable_local_login || file.disable_local_login.unwrap_or(false)),
            bootstrap_admin_group: self.bootstrap_admin_group.or(file.bootstrap_admin_group),
            allow_local_monitoring_urls: self.allow_local_monitoring_urls
                || file.allow_local_monitoring_urls.unwrap_or(false),
            grafana,
            power_refresh: Duration::from_secs(
                self.power_refresh_seconds.or(file.power_refresh_seconds).unwrap_or(60).clamp(5, 86_400),
            ),
            hardware_refresh: Duration::from_secs(
                self.hardware_refresh_seconds.or(file.hardware_refresh_seconds).unwrap_or(3600).clamp(60, 604_800),
            ),
            trusted_proxies: if self.trusted_proxies.is_empty() {
                file.trusted_proxies.unwrap_or_default()
            } else {
                self.trusted_proxies
            },
            bootstrap_password: std::env::var("PANGEA_BOOTSTRAP_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .map(SecretString::from),
            public_url,
            listen,
            boot_listen,
            boot_url: match self.boot_url.or(file.boot_url) {
                Some(url) => url.as_str().trim_end_matches('/').to_string(),
                None => format!("http://{boot_listen}"),
            },
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            site_embedded: site_root.is_none() && crate::site::is_embedded(),
            site_root: match site_root {
                Some(dir) => dir,
                None if crate::site::is_embedded() => crate::site::unpacked_dir(&data_dir),
                None => "target/site".into(),
            },
            assets_dir: self.assets_dir.or(file.assets_dir).unwrap_or_else(|| data_dir.join("assets")),
            boot_retention: {
                let default = crate::provisioner::boots::Retention::default();
                crate::provisioner::boots::Retention {
                    per_machine: self
                        .boot_events_per_machine
                        .or(file.boot_events_per_machine)
                        .unwrap_or(default.per_machine)
                        .max(1),
                    max_age: self.boot_events_days.or(file.boot_events_days).map_or(default.max_age, |days| {
                        std::time::Duration::from_secs(u64::from(days.max(1)) * 86_400)
                    }),
                    discovered: self.discovered_limit.or(file.discovered_limit).unwrap_or(default.discovered),
                    per_address: self
                        .boot_requests_per_address
                        .or(file.boot_requests_per_address)
                        .unwrap_or(default.per_address),
                    per_mac: self.boot_requests_per_mac.or(file.boot_requests_per_mac).unwrap_or(default.per_mac),
                }
            },
            grpc: match (
                self.rpc_listen.or(file.rpc_listen),
                self.rpc_cert_file.or(file.rpc_cert_file),
                self.rpc_key_file.or(file.rpc_key_file),
                self.rpc_ca_file.or(file.rpc_ca_file),
            ) {
                (None, ..) => None,
                (Some(at), Some(cert), Some(key), Some(client_ca)) => Some((
                    at,
                    crate::provisioner::grpc::GrpcTls {
                        cert,
                        key,
                        client_ca,
                        client_crl: self.rpc_crl_file.or(file.rpc_crl_file),
                    },
                )),
                (Some(_), ..) => {
                    return Err(ConfigError::Value(
                        "rpc_listen",
                        "the gRPC API needs --rpc-cert-file, --rpc-key-file and --rpc-ca-file: Matchbox's API is TLS with client certificates only".into(),
                    ));
                }
            },
            data_dir,
            database_url,
        })
    }
}

impl Config {
    pub fn leptos_options(&self) -> leptos::config::LeptosOptions {
        leptos::config::LeptosOptions::builder()
            .output_name("pangea")
            .site_root(self.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(self.listen)
            .hash_files(self.hash_file().is_some())
            .hash_file(self.hash_file().unwrap_or_default().to_string_lossy().as_ref().into())
            .build()
    }

    /// `scheme://host[:port]` of the public URL, which browsers send as `Origin`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// Whether the database is SQLite, whose file lives in the data directory.
    pub fn uses_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }
}

impl Config {
    /// The file naming the site's content-hashed files, whose names the pages must then link:
    /// an embedded site carries it; `cargo leptos build` writes it beside the server binary.
    /// An absolute path, which leptos takes as it is.
    fn hash_file(&self) -> Option<PathBuf> {
        let beside_binary = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt")));
        let in_site = std::path::absolute(self.site_root.join("hash.txt")).ok();
        [in_site, beside_binary].into_iter().flatten().find(|file| file.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `pangea …` command lines of the fenced shell blocks in `text`: continuation lines
    /// joined, comments and `[optional]` parts dropped, and whatever names the binary (a path,
    /// environment variables before it) replaced by `pangea`.
    fn documented_commands(text: &str) -> Vec<Vec<String>> {
        let mut commands = Vec::new();
        let mut in_shell = false;
        let mut line = String::new();
        for raw in text.lines() {
            let trimmed = raw.trim();
            if let Some(lang) = trimmed.strip_prefix("```") {
                in_shell = !in_shell && matches!(lang, "sh" | "bash" | "");
                continue;
            }
            if !in_shell {
                continue;
            }
            let code = trimmed.split(" #").next().unwrap_or_default().trim();
            line.push_str(code.trim_end_matches('\\'));
            line.push(' ');
            if code.ends_with('\\') {
                continue;
            }
            let mut words = std::mem::take(&mut line)
                .split_whitespace()
                .skip_while(|w| !(*w == "pangea" || w.ends_with("/pangea")))
                .map(str::to_string)
                .collect::<Vec<_>>();
            if words.is_empty() {
                continue;
            }
            words[0] = "pangea".into();
            let mut optional = false;
            words.retain(|w| {
                let keep = !optional && !w.starts_with('[');
                optional = (optional || w.starts_with('[')) && !w.ends_with(']');
                keep
            });
            commands.push(words);
        }
        commands
    }

    /// Every `pangea …` command in the README and docs/ is one `pangea` parses, with flags it
    /// has and values it takes, so none goes stale when the command line changes.
    #[test]
    fn every_documented_command_line_parses() {
        let documents = [
            ("README.md", include_str!("../../README.md")),
            ("docs/using.md", include_str!("../../docs/using.md")),
            ("docs/provisioning.md", include_str!("../../docs/provisioning.md")),
            ("docs/clusters.md", include_str!("../../docs/clusters.md")),
            ("docs/monitoring.md", include_str!("../../docs/monitoring.md")),
            ("docs/single-sign-on.md", include_str!("../../docs/single-sign-on.md")),
            ("docs/architecture.md", include_str!("../../docs/architecture.md")),
            ("docs/benchmarks.md", include_str!("../../docs/benchmarks.md")),
        ];
        let mut parsed = 0;
        for (file, text) in documents {
            for words in documented_commands(text) {
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{file}: `{}` does not parse: {e}", words.join(" "));
                }
                parsed += 1;
            }
        }
        assert!(parsed >= 5, "only {parsed} documented commands found: is the extraction broken?");
    }

    #[test]
    fn documented_commands_are_read_as_a_shell_would() {
        let text = "```sh\nPANGEA_X=… ~/bin/pangea cluster add a --kubeconfig k [--context NAME]  # note\n\
                    pangea token create --name d \\\n  --role viewer\ncurl x\n```\npangea not in a block\n";
        let commands = documented_commands(text);
        assert_eq!(
            commands,
            [
                vec!["pangea", "cluster", "add", "a", "--kubeconfig", "k"],
                vec!["pangea", "token", "create", "--name", "d", "--role", "viewer"],
            ]
        );
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pangea.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:4000\"\nboot_listen = \"127.0.0.1:9090\"\n").unwrap();
        let args = ServeArgs::parse_from(["pangea", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:5000"]);
        let config = args.resolve().unwrap();
        assert_eq!(config.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(config.boot_listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("pangea-data"));
        assert!(config.uses_sqlite());
    }

    #[test]
    fn proxy_ranges_parse_and_match() {
        let range: ProxyRange = "10.1.0.0/16".parse().unwrap();
        assert!(range.contains("10.1.200.3".parse().unwrap()));
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.0.9".parse().unwrap()), "IPv4-mapped IPv6");
        let one: ProxyRange = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()) && !one.contains("::2".parse().unwrap()));
        let all: ProxyRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<ProxyRange>().unwrap_err().contains("CIDR"));
        assert!("proxy.example".parse::<ProxyRange>().is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pangea.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:4000\"\n").unwrap();
        let err = ServeArgs::parse_from(["pangea", "--config", file.to_str().unwrap()]).resolve().unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn a_database_password_is_refused_in_a_flag_and_taken_from_a_file() {
        let err = ServeArgs::parse_from(["pangea", "--database-url", "postgres://app:hunter2@db/pangea"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--database-url must not hold a password") && !err.contains("hunter2"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-url");
        std::fs::write(&file, "postgres://app:hunter2@db/pangea\n").unwrap();
        let args = ServeArgs::parse_from(["pangea", "--database-url-file", file.to_str().unwrap()]);
        assert!(!format!("{args:?}").contains("hunter2"));
        let config = args.resolve().unwrap();
        assert_eq!(config.database_url.expose_secret(), "postgres://app:hunter2@db/pangea");
        assert!(!format!("{config:?}").contains("hunter2"));
        let plain = ServeArgs::parse_from(["pangea", "--database-url", "postgres://app@db/pangea"]).resolve().unwrap();
        assert_eq!(plain.database_url.expose_secret(), "postgres://app@db/pangea");
    }
}
