use app::access::Principal;
use clap::Parser;
use pangea::access::Access;
use pangea::config::{
    AccessCommand, AdminCommand, AuditCommand, BmcCommand, Cli, ClusterCommand, Command, KeysCommand,
    ProvisionerCommand, ServeArgs, StorageArgs, TokenCommand,
};
use pangea::db::Database;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        None => return serve(ServeArgs::parse_from(["pangea"])).await,
        Some(Command::Serve(args)) => return serve(*args).await,
        Some(Command::Audit(AuditCommand::Verify { storage, checkpoint })) => {
            return verify_audit(storage, checkpoint).await;
        }
        Some(Command::Audit(AuditCommand::Checkpoint(storage))) => audit_checkpoint(storage).await,
        Some(Command::Token(command)) => token(command).await,
        Some(Command::Admin(AdminCommand::ResetPassword { storage, username })) => {
            reset_password(storage, username).await
        }
        Some(Command::Access(AccessCommand::Bind { storage, subject, role, user, cluster })) => {
            bind(storage, subject, role, user, cluster.unwrap_or_default()).await
        }
        Some(Command::Provisioner(command)) => provisioner(command).await,
        Some(Command::Cluster(command)) => cluster(command).await,
        Some(Command::Keys(KeysCommand::Rotate(storage))) => rotate_keys(storage).await,
        Some(Command::Bmc(command)) => bmc(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pangea: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command line's principal, named after the operating-system user running it: the name
/// `/etc/passwd` gives the process's user id, else `uid N`. Never `$USER`, which the caller sets.
fn cli_principal() -> Principal {
    Principal::cli_as(os_user_of_this_process())
}

fn os_user_of_this_process() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else { return "unknown".into() };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_string())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

async fn serve(args: ServeArgs) -> ExitCode {
    let config = match args.resolve() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("pangea: {err}");
            return ExitCode::from(2);
        }
    };
    pangea::telemetry::init(config.log_format);
    match pangea::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "pangea stopped");
            ExitCode::FAILURE
        }
    }
}

/// Opens (and, on a new database, creates) the database a CLI command works on.
async fn open(storage: &StorageArgs) -> Result<Database, String> {
    let url = storage.database_url().map_err(|e| e.to_string())?;
    let (_, chain_key) = storage.keys()?;
    let db = Database::connect(&url, chain_key).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    Ok(db)
}

async fn verify_audit(storage: StorageArgs, checkpoint: Option<std::path::PathBuf>) -> ExitCode {
    let db = match open(&storage).await {
        Ok(db) => db,
        Err(err) => {
            eprintln!("pangea: {err}");
            return ExitCode::from(2);
        }
    };
    let checkpoint = match checkpoint.map(|path| {
        std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the checkpoint {}: {e}", path.display()))
            .and_then(|text| {
                serde_json::from_str::<pangea::audit::Checkpoint>(&text)
                    .map_err(|e| format!("{} is not a checkpoint from `pangea audit checkpoint`: {e}", path.display()))
            })
    }) {
        None => None,
        Some(Ok(checkpoint)) => Some(checkpoint),
        Some(Err(err)) => {
            eprintln!("pangea: {err}");
            return ExitCode::from(2);
        }
    };
    let verified = match &checkpoint {
        Some(checkpoint) => pangea::audit::verify_with_checkpoint(&db, checkpoint).await,
        None => pangea::audit::verify(&db).await,
    };
    match verified {
        Ok(count) => {
            let against = checkpoint.map(|c| format!(", and it holds the checkpoint of {}", c.at)).unwrap_or_default();
            println!("audit log intact: {count} records, keyed hash chain verified{against}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("audit log BROKEN: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `pangea keys rotate`: see [`KeysCommand::Rotate`].
async fn rotate_keys(storage: StorageArgs) -> Result<(), String> {
    use pangea::audit::{self, Event};
    use pangea::secrets::{self, Sealer};
    let data_dir = storage.data_dir().map_err(|e| e.to_string())?;
    let configured = std::env::var("PANGEA_SECRET_KEY").ok().filter(|k| !k.is_empty()).map(secrecy::SecretString::from);
    let db = open(&storage).await?;
    let mut keys = secrets::load_secret_keys(configured.as_ref(), &data_dir).map_err(|e| e.to_string())?;
    if configured.is_none() {
        // The new key goes first in the file before anything is sealed with it: whatever
        // happens next, every value stays readable.
        keys.insert(0, rand::random());
        secrets::write_key_file(&data_dir, &keys).map_err(|e| format!("cannot write the new key file: {e}"))?;
    }
    let sealer = Sealer::from_keys(&keys);
    let mut tx = audit::begin(&db).await.map_err(|e| e.to_string())?;
    let clusters = pangea::clusters::store::reseal(&mut tx, &sealer).await.map_err(|e| e.to_string())?;
    let (sessions, ended) =
        pangea::access::store::reseal_refresh_tokens(&mut tx, &sealer).await.map_err(|e| e.to_string())?;
    let bmcs = pangea::power::store::reseal(&mut tx, &sealer).await.map_err(|e| e.to_string())?;
    let summary = serde_json::json!({
        "key_id": sealer.key_id(), "clusters": clusters, "sessions": sessions, "sessions_ended": ended, "bmcs": bmcs,
    });
    audit::append(
        &mut tx,
        &cli_principal(),
        Event::new("keys.rotate", "key").target(sealer.key_id(), "secret key").summary(summary),
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    eprintln!(
        "Re-sealed {clusters} cluster(s), {bmcs} BMC password(s) and {sessions} session refresh token(s) under key {}{}.",
        sealer.key_id(),
        if ended > 0 { format!("; ended {ended} session(s) whose token could not be opened") } else { String::new() }
    );
    Ok(())
}

async fn audit_checkpoint(storage: StorageArgs) -> Result<(), String> {
    let checkpoint = pangea::audit::checkpoint(&open(&storage).await?).await.map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string(&checkpoint).map_err(|e| e.to_string())?);
    Ok(())
}

async fn token(command: TokenCommand) -> Result<(), String> {
    let who = cli_principal();
    match command {
        TokenCommand::Create { storage, name, role, expires, cluster_user, cluster_groups } => {
            let cluster_as = app::access::ClusterIdentity::parse(&cluster_user, &cluster_groups)?;
            let access = Access::new(open(&storage).await?, true, false);
            let (info, token) =
                access.create_token(&who, &name, role, expires, cluster_as).await.map_err(|e| e.to_string())?;
            let acts_as = match &info.cluster_as {
                Some(c) if c.groups.is_empty() => format!(", acts in clusters as {}", c.user),
                Some(c) => format!(", acts in clusters as {} in {}", c.user, c.groups.join(", ")),
                None => String::new(),
            };
            eprintln!(
                "Created token {} ({}, role {}{}{acts_as}). It is shown only now:",
                info.id,
                info.name,
                info.role.as_str(),
                info.expires_at.map(|at| format!(", expires {at}")).unwrap_or_default()
            );
            println!("{token}");
        }
        TokenCommand::List(storage) => {
            let access = Access::new(open(&storage).await?, true, false);
            println!("{:>5}  {:<24} {:<9} {:<28} {:<28} STATE", "ID", "NAME", "ROLE", "EXPIRES", "LAST USED");
            for t in access.list_tokens(&who).await.map_err(|e| e.to_string())? {
                println!(
                    "{:>5}  {:<24} {:<9} {:<28} {:<28} {}",
                    t.id,
                    t.name,
                    t.role.as_str(),
                    t.expires_at.unwrap_or_else(|| "never".into()),
                    t.last_used_at.unwrap_or_else(|| "never".into()),
                    if t.revoked { "revoked" } else { "active" }
                );
            }
        }
        TokenCommand::Revoke { storage, id } => {
            let access = Access::new(open(&storage).await?, true, false);
            access.revoke_token(&who, id).await.map_err(|e| e.to_string())?;
            println!("Revoked token {id}.");
        }
    }
    Ok(())
}

async fn reset_password(storage: StorageArgs, username: String) -> Result<(), String> {
    let access = Access::new(open(&storage).await?, true, false);
    let given = std::env::var("PANGEA_NEW_PASSWORD").ok().filter(|p| !p.is_empty()).map(secrecy::SecretString::from);
    let generated = access.reset_password(&cli_principal(), &username, given).await.map_err(|e| e.to_string())?;
    match generated {
        Some(password) => {
            eprintln!("New password for {username} (shown only now):");
            println!("{password}");
        }
        None => println!("Password for {username} set from PANGEA_NEW_PASSWORD."),
    }
    Ok(())
}

async fn bind(
    storage: StorageArgs,
    subject: String,
    role: app::access::ConsoleRole,
    user: bool,
    cluster: String,
) -> Result<(), String> {
    let access = Access::new(open(&storage).await?, true, false);
    let kind = if user { "user" } else { "group" };
    access.bind_in(&cli_principal(), kind, &subject, role, &cluster).await.map_err(|e| e.to_string())?;
    let scope = if cluster.is_empty() { String::new() } else { format!(" on cluster {cluster}") };
    println!("Bound {kind} {subject} to {}{scope}.", role.as_str());
    Ok(())
}

/// The clusters service on `storage`'s database, with the secret key that seals credentials.
async fn clusters_on(storage: &StorageArgs) -> Result<pangea::clusters::Clusters, String> {
    let (sealer, _) = storage.keys()?;
    let db = open(storage).await?;
    let jobs = pangea::jobs::Jobs::new(db.clone());
    let sources_check = std::sync::Arc::new(pangea::monitoring::source_check::SourceCheck);
    Ok(pangea::clusters::Clusters::new(db, std::sync::Arc::new(sealer), jobs, sources_check))
}

async fn cluster(command: ClusterCommand) -> Result<(), String> {
    use app::clusters::ssr::ClusterService;
    use app::clusters::{ClusterInput, Credential, KubeconfigImport};
    let who = cli_principal();
    match command {
        ClusterCommand::Add { storage, name, context, kubeconfig, server, ca_file } => {
            let clusters = clusters_on(&storage).await?;
            let added = match (kubeconfig, server) {
                (Some(path), _) => {
                    let kubeconfig = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    clusters.add_from_kubeconfig(&who, KubeconfigImport { name, kubeconfig, context }).await
                }
                (None, Some(server)) => {
                    let token = std::env::var("PANGEA_CLUSTER_TOKEN").map_err(|_| {
                        "set PANGEA_CLUSTER_TOKEN to Pangea's bearer token for this cluster".to_string()
                    })?;
                    let ca_pem = match ca_file {
                        Some(path) => std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                        None => String::new(),
                    };
                    let input = ClusterInput {
                        name,
                        api_url: server,
                        ca_pem,
                        credential: Some(Credential::Token { token }),
                        ..Default::default()
                    };
                    clusters.add(&who, input).await
                }
                (None, None) => return Err("give --server (with PANGEA_CLUSTER_TOKEN) or --kubeconfig".into()),
            }
            .map_err(|e| e.to_string())?;
            println!("Registered cluster {} ({}).", added.name, added.api_url);
        }
        ClusterCommand::Create { storage, file, dry_run, boot_url } => {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            // The machines' configs name it: a guess would send them to the wrong place.
            if !dry_run && boot_url.is_none() && storage.boot_url().map_err(|e| e.to_string())?.is_none() {
                return Err("give --boot-url (or PANGEA_BOOT_URL, or boot_url in the config file): the URL machines \
                            reach Pangea's boot listener at, as the server's"
                    .into());
            }
            let (creation, clusters) = creation_on(&storage, boot_url).await?;
            let preview = creation.preview(&who, &text).await.map_err(|e| e.to_string())?;
            for node in &preview.nodes {
                let power = if node.powered_by_pangea { "powered by Pangea" } else { "no BMC: power it on yourself" };
                println!("{:<10} {:<24} {}  {power}", node.role, node.name, node.mac);
            }
            for change in &preview.changes {
                println!("change: {}: {} -> {}", change.field, change.before, change.after);
            }
            for problem in &preview.problems {
                println!("problem: {problem}");
            }
            if !dry_run {
                let (created, state) = creation.create(&who, &text).await.map_err(|e| e.to_string())?;
                println!(
                    "{} {}: the running Pangea server powers its machines on and follows them (pangea cluster creation {}).",
                    if created { "Creating" } else { "Already creating" },
                    state.name,
                    state.name
                );
            }
            clusters.stop();
        }
        ClusterCommand::Creation { storage, name } => {
            let (creation, clusters) = creation_on(&storage, None).await?;
            let state = creation.creation(&who, &name).await.map_err(|e| e.to_string())?;
            println!("{}: {} ({})", state.name, state.state, state.step);
            if let Some(error) = &state.error {
                println!("error: {error}");
            }
            println!("{:<10} {:<24} {:<18} {:<12} WAITING FOR", "ROLE", "NODE", "MAC", "STATE");
            for m in &state.machines {
                println!("{:<10} {:<24} {:<18} {:<12} {}", m.role, m.name, m.mac, m.state, m.waiting);
            }
            clusters.stop();
        }
        ClusterCommand::Template { storage, name } => {
            let (creation, clusters) = creation_on(&storage, None).await?;
            print!("{}", creation.template(&who, &name).await.map_err(|e| e.to_string())?);
            clusters.stop();
        }
        ClusterCommand::Destroy { storage, name, confirm } => {
            let (creation, clusters) = creation_on(&storage, None).await?;
            creation.destroy(&who, &name, &confirm).await.map_err(|e| e.to_string())?;
            finished(&creation.background()).await;
            clusters.stop();
            println!("Destroyed {name}: its configs and secrets are removed and its machines freed.");
        }
        ClusterCommand::List(storage) => {
            let clusters = clusters_on(&storage).await?;
            clusters.start().await.map_err(|e| e.to_string())?;
            println!("{:<24} {:<40} CREDENTIAL", "NAME", "API SERVER");
            for c in clusters.clusters(&who).await.map_err(|e| e.to_string())? {
                println!("{:<24} {:<40} {}", c.name, c.api_url, c.credential_kind);
            }
            clusters.stop();
        }
        ClusterCommand::Remove { storage, name } => {
            let clusters = clusters_on(&storage).await?;
            clusters.remove(&who, &name).await.map_err(|e| e.to_string())?;
            println!("Removed cluster {name}.");
        }
    }
    Ok(())
}

async fn provisioner(command: ProvisionerCommand) -> Result<(), String> {
    use pangea::provisioner::{Provisioner, import};
    let who = cli_principal();
    match command {
        ProvisionerCommand::Import { storage, dir, dry_run, copy_assets, assets_dir } => {
            let plan = tokio::task::spawn_blocking(move || import::plan(&dir)).await.map_err(|e| e.to_string())?;
            let catalog = &plan.catalog;
            println!(
                "{}: {} profiles, {} groups, {} templates",
                plan.source,
                catalog.profiles.len(),
                catalog.groups.len(),
                catalog.templates.len()
            );
            for warning in &plan.warnings {
                println!("warning: {warning}");
            }
            for error in &plan.errors {
                println!("error: {error}");
            }
            if !plan.errors.is_empty() {
                return Err(format!("{} file(s) have errors; nothing was imported", plan.errors.len()));
            }
            if dry_run {
                println!("dry run: nothing was written");
                return Ok(());
            }
            let assets = assets_dir
                .map_or_else(|| storage.data_dir().map(|d| d.join("assets")), Ok)
                .map_err(|e| e.to_string())?;
            let provisioner =
                Provisioner::open(open(&storage).await?, assets.clone()).await.map_err(|e| e.to_string())?;
            let summary = provisioner.import(&who, &plan).await.map_err(|e| e.to_string())?;
            println!(
                "imported {} profiles, {} groups, {} templates",
                summary.profiles, summary.groups, summary.templates
            );
            let source_assets = std::path::Path::new(&plan.source).join("assets");
            if copy_assets {
                let (copied, left_out) =
                    import::copy_assets(std::path::Path::new(&plan.source), &assets).map_err(|e| {
                        format!("the catalog was imported, but copying assets into {} failed: {e}", assets.display())
                    })?;
                println!("copied {copied} asset file(s) into {}", assets.display());
                for link in left_out {
                    eprintln!(
                        "warning: {} is a symbolic link out of {}: not copied (assets are served to anyone)",
                        link.display(),
                        plan.source
                    );
                }
            } else if source_assets.is_dir() {
                println!(
                    "assets stay in {}: serve them with --assets-dir {0}, or import again with --copy-assets",
                    source_assets.display()
                );
            }
            Ok(())
        }
        ProvisionerCommand::Certs { dir, server_names, client_name } => {
            let written = pangea::provisioner::grpc::certs::generate(&dir, &server_names, &client_name)?;
            for path in written {
                println!("wrote {}", path.display());
            }
            println!(
                "serve with: pangea serve --rpc-listen 0.0.0.0:8081 --rpc-cert-file {0}/server.crt --rpc-key-file {0}/server.key --rpc-ca-file {0}/ca.crt",
                dir.display()
            );
            println!(
                "give client.crt, client.key and ca.crt to Terraform; keep ca.key offline to make more client certificates"
            );
            Ok(())
        }
        ProvisionerCommand::Export { storage, dir } => {
            let provisioner =
                Provisioner::open(open(&storage).await?, std::path::PathBuf::new()).await.map_err(|e| e.to_string())?;
            let catalog = provisioner.catalog(&who).await.map_err(|e| e.to_string())?;
            let written = import::export(&catalog, &dir)?;
            println!("wrote {written} file(s) into {}", dir.display());
            Ok(())
        }
    }
}

/// The power service on `storage`'s database, with its background (where a power action is
/// followed and a hardware read runs), and the id of the machine `mac`.
async fn power_on(
    storage: &StorageArgs,
    mac: &str,
) -> Result<(pangea::power::Power, pangea::background::Background, i64), String> {
    use app::machines::ssr::MachineService;
    use pangea::provisioner::Provisioner;
    use std::sync::Arc;
    let (sealer, _) = storage.keys()?;
    let db = open(storage).await?;
    let provisioner =
        Arc::new(Provisioner::open(db.clone(), std::path::PathBuf::new()).await.map_err(|e| e.to_string())?);
    let sealer = Arc::new(sealer);
    let inventory_power = pangea::power::InventoryPower { db: db.clone(), sealer: sealer.clone() };
    let machines = Arc::new(pangea::machines::Machines::new(
        db.clone(),
        pangea::jobs::Jobs::new(db.clone()),
        provisioner.clone(),
        Arc::new(inventory_power),
        sealer.clone(),
    ));
    let wanted: app::machines::mac::MacAddr = mac.parse().map_err(|e| format!("\"{mac}\": {e}"))?;
    let query = app::machines::MachineQuery { search: Some(wanted.to_string()), ..Default::default() };
    let found = machines.list(&cli_principal(), query).await.map_err(|e| e.to_string())?;
    let id = found.items.first().map(|m| m.id).ok_or_else(|| format!("no machine has the MAC {wanted}"))?;
    let background = pangea::background::Background::default();
    let jobs = pangea::jobs::Jobs::new(db.clone());
    let power = pangea::power::Power::new(db, sealer, machines, provisioner, jobs, background.clone());
    Ok((power, background, id))
}

/// Cluster creation on the database, for the command line: the creation jobs it starts are left
/// to the running server, which takes them over once their lease runs out.
async fn creation_on(
    storage: &StorageArgs,
    boot_url: Option<url::Url>,
) -> Result<(std::sync::Arc<pangea::creation::Creation>, std::sync::Arc<pangea::clusters::Clusters>), String> {
    use pangea::provisioner::Provisioner;
    use std::sync::Arc;
    let (sealer, _) = storage.keys()?;
    let db = open(storage).await?;
    let sealer = Arc::new(sealer);
    let boot_url = match boot_url.or(storage.boot_url().map_err(|e| e.to_string())?) {
        Some(url) => url.as_str().trim_end_matches('/').to_string(),
        None => "http://127.0.0.1:8080".to_string(),
    };
    let provisioner =
        Arc::new(Provisioner::open(db.clone(), std::path::PathBuf::new()).await.map_err(|e| e.to_string())?);
    let jobs = pangea::jobs::Jobs::new(db.clone());
    let machines = Arc::new(pangea::machines::Machines::new(
        db.clone(),
        jobs.clone(),
        provisioner.clone(),
        Arc::new(pangea::power::InventoryPower { db: db.clone(), sealer: sealer.clone() }),
        sealer.clone(),
    ));
    let background = pangea::background::Background::default();
    let power = pangea::power::Power::new(
        db.clone(),
        sealer.clone(),
        machines.clone(),
        provisioner.clone(),
        jobs.clone(),
        background.clone(),
    );
    let clusters = Arc::new(clusters_on(storage).await?);
    clusters.start().await.map_err(|e| e.to_string())?;
    let creation = pangea::creation::Creation::new(
        db,
        machines,
        sealer,
        provisioner,
        power,
        clusters.clone(),
        jobs,
        background,
        boot_url,
    )
    .leaving_jobs_to_the_server();
    Ok((Arc::new(creation), clusters))
}

/// Waits for the background work a command started (a hardware read, a power action followed).
async fn finished(background: &pangea::background::Background) {
    while background.running() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn bmc(command: BmcCommand) -> Result<(), String> {
    use app::power::ssr::PowerService;
    use app::power::{BmcInput, PowerAction};
    let who = cli_principal();
    match command {
        BmcCommand::Set { storage, mac, url, user, ca_file, verify_off } => {
            let password = std::env::var("PANGEA_BMC_PASSWORD")
                .map_err(|_| "set PANGEA_BMC_PASSWORD to the BMC user's password".to_string())?;
            let ca_pem = match ca_file {
                Some(path) => std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                None => String::new(),
            };
            let (power, background, id) = power_on(&storage, &mac).await?;
            let input = BmcInput { url, username: user, password: Some(password), ca_pem, verify_off };
            let set = power.set_bmc(&who, id, input).await.map_err(|e| e.to_string())?;
            println!("BMC set for {mac}: {} (system {}), power {}.", set.url, set.system, set.power.state.words());
            for warning in &set.warnings {
                println!("warning: {warning}");
            }
            finished(&background).await;
            power.close().await;
            print_hardware(&power, id).await?;
        }
        BmcCommand::Show { storage, mac } => {
            let (power, _, id) = power_on(&storage, &mac).await?;
            let bmc =
                power.bmc(&who, id).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{mac} has no BMC"))?;
            let reason = if bmc.power.reason.is_empty() { String::new() } else { format!(" ({})", bmc.power.reason) };
            println!("BMC:    {} (user {}, system {})", bmc.url, bmc.username, bmc.system);
            println!("Power:  {}{reason}, read at {}", bmc.power.state.words(), bmc.power.read_at);
            for warning in &bmc.warnings {
                println!("warning: {warning}");
            }
            print_hardware(&power, id).await?;
        }
        BmcCommand::Remove { storage, mac } => {
            let (power, _, id) = power_on(&storage, &mac).await?;
            power.remove_bmc(&who, id).await.map_err(|e| e.to_string())?;
            println!("BMC of {mac} forgotten.");
        }
        BmcCommand::Power { storage, mac, action } => {
            let action = PowerAction::parse(&action).ok_or_else(|| {
                let known: Vec<&str> = PowerAction::ALL.iter().map(|a| a.as_str()).collect();
                format!("\"{action}\" is no power action; use one of {}", known.join(", "))
            })?;
            let (power, background, id) = power_on(&storage, &mac).await?;
            let asked = power.act(&who, id, action).await.map_err(|e| e.to_string())?;
            println!("Asked for {}: {}.", action.words(), asked.state.words());
            finished(&background).await;
            power.close().await;
            let now = power.bmc(&who, id).await.map_err(|e| e.to_string())?.map(|b| b.power);
            match now {
                Some(p) if p.reason.is_empty() => println!("Now {}.", p.state.words()),
                Some(p) => return Err(format!("{}: {}", p.state.words(), p.reason)),
                None => return Err(format!("{mac} has no BMC any more")),
            }
        }
    }
    Ok(())
}

async fn print_hardware(power: &pangea::power::Power, id: i64) -> Result<(), String> {
    use app::power::ssr::PowerService;
    let Some(record) = power.hardware(&cli_principal(), id).await.map_err(|e| e.to_string())? else { return Ok(()) };
    if !record.problem.is_empty() {
        println!("The last hardware read failed: {}", record.problem);
    }
    let h = &record.hardware;
    let told = |n: Option<usize>| n.map_or("not told".to_string(), |n| n.to_string());
    println!("Hardware, read at {}:", record.read_at);
    println!(
        "  {} {} (serial {}), BIOS {}, BMC firmware {}",
        h.manufacturer, h.model, h.serial, h.bios_version, h.bmc_firmware
    );
    println!(
        "  CPUs {}, memory {} GiB, disks {}, NICs {}",
        told(h.cpus.map(|n| n as usize)),
        told(h.memory_gib.map(|n| n as usize)),
        told(h.disks.as_ref().map(Vec::len)),
        told(h.nics.as_ref().map(Vec::len))
    );
    for change in &record.changes {
        println!("  changed: {} (seen {})", change.words(), change.seen_at);
    }
    Ok(())
}
