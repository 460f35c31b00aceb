//! Server-side errors: what stops start-up, and how an unexpected failure reaches a client.

use app::error::AppError;
use std::net::SocketAddr;

/// Why `pangea serve` could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(std::path::PathBuf, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("a listener failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot set up the first admin: {0}")]
    Bootstrap(String),
}

tokio::task_local! {
    /// The id of the request being handled, so errors can name it to the client.
    pub static REQUEST_ID: String;
}

/// Logs an unexpected failure with its details and returns the error the client sees, which
/// names only the request id.
pub fn internal(err: impl std::fmt::Display) -> AppError {
    let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "none".into());
    tracing::error!(error = %err, %request_id, "internal error");
    AppError::Internal { request_id }
}

/// `result.or_internal()?`: any unexpected error becomes a logged [`internal`] error.
pub trait OrInternal<T> {
    fn or_internal(self) -> Result<T, AppError>;
}

impl<T, E: std::fmt::Display> OrInternal<T> for Result<T, E> {
    fn or_internal(self) -> Result<T, AppError> {
        self.map_err(internal)
    }
}
