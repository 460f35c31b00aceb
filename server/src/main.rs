use clap::Parser;
use pangea::config::{Cli, Command, ServeArgs};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => ServeArgs::parse_from(["pangea"]),
    };
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
