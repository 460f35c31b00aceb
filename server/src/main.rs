use clap::Parser;
use pangea::config::{AuditCommand, Cli, Command, ServeArgs, StorageArgs};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::Serve(args)) => serve(args).await,
        None => serve(ServeArgs::parse_from(["pangea"])).await,
        Some(Command::Audit(AuditCommand::Verify(storage))) => verify_audit(storage).await,
    }
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

async fn verify_audit(storage: StorageArgs) -> ExitCode {
    let db = match storage.database_url() {
        Ok(url) => pangea::db::Database::connect(&url).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let db = match db {
        Ok(db) => db,
        Err(err) => {
            eprintln!("pangea: {err}");
            return ExitCode::from(2);
        }
    };
    match pangea::audit::verify(&db).await {
        Ok(count) => {
            println!("audit log intact: {count} records, hash chain verified");
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("audit log BROKEN: {err}");
            ExitCode::FAILURE
        }
    }
}
