//! Server-side errors: what stops start-up, the one [`Error`] of the server's work, and how it
//! reaches a client: mapped once to [`AppError`] (and so to one JSON shape and status).

use app::error::{AppError, FieldError};
use std::net::SocketAddr;

/// What can go wrong in the server's own work. Each variant keeps its cause; [`AppError::from`]
/// decides once what a client sees: a person-facing error as it is, a unique violation as a
/// conflict named by its constraint, anything else as an internal error that is logged with
/// the request id.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("HTTP client: {0}")]
    Http(#[from] openidconnect::reqwest::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("password hashing: {0}")]
    PasswordHash(argon2::password_hash::Error),
    #[error("{0}")]
    Other(String),
}

impl From<argon2::password_hash::Error> for Error {
    fn from(e: argon2::password_hash::Error) -> Error {
        Error::PasswordHash(e)
    }
}

impl From<Error> for AppError {
    fn from(error: Error) -> AppError {
        match error {
            Error::App(e) => e,
            Error::Database(e) => match crate::db::unique_constraint(&e) {
                Some(constraint) => conflict_on(constraint),
                None if crate::db::is_unreachable(&e) => {
                    tracing::warn!(error = %e, "the database did not answer");
                    AppError::Unavailable {
                        message: "Pangea's database is not answering (restarting or unreachable). Try again in a \
                                  moment; a change you were making may not have been saved."
                            .into(),
                    }
                }
                None => internal(e),
            },
            other => internal(other),
        }
    }
}

/// The conflict a person sees when a change would break the unique constraint `name`.
fn conflict_on(name: &str) -> AppError {
    let (field, message) = match name {
        "machines_mac_key" => ("mac", "A machine with this MAC address already exists."),
        "users_username_key" => ("username", "That user name belongs to another account."),
        "users_issuer_subject_key" => ("subject", "That identity-provider account is already a Pangea user."),
        "clusters_name_key" => ("name", "A cluster with this name is already registered."),
        "role_bindings_subject_key" => {
            ("subject", "That group or user already has a role; change or remove it instead.")
        }
        _ => ("", "This would duplicate something that must be unique."),
    };
    let fields =
        if field.is_empty() { Vec::new() } else { vec![FieldError { field: field.into(), message: message.into() }] };
    AppError::Conflict { message: message.into(), fields }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        crate::http::ApiError(AppError::from(self)).into_response()
    }
}

/// Why `pangea serve` could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(std::path::PathBuf, std::io::Error),
    #[error("cannot unpack the console's site into {0}: {1}")]
    Site(std::path::PathBuf, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("a listener failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot set up the first admin: {0}")]
    Bootstrap(String),
    #[error("{0}")]
    AlreadyServing(String),
}

/// The innermost cause of a failed request, such as "Connection refused (os error 111)".
pub fn cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
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

/// `result.or_internal()?`: the error goes through [`Error`]'s one mapping to what a client
/// sees (a known unique violation is a conflict; anything unexpected is logged and internal).
pub trait OrInternal<T> {
    fn or_internal(self) -> Result<T, AppError>;
}

impl<T, E: Into<Error>> OrInternal<T> for Result<T, E> {
    fn or_internal(self) -> Result<T, AppError> {
        self.map_err(|e| AppError::from(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_facing_errors_pass_and_known_constraints_become_conflicts() {
        let invalid = AppError::invalid("bad");
        assert_eq!(AppError::from(Error::App(invalid.clone())), invalid);
        let taken = conflict_on("machines_mac_key");
        assert_eq!(taken.status(), 409);
        assert_eq!(taken.field("mac").as_deref(), Some("A machine with this MAC address already exists."));
        assert_eq!(AppError::from(Error::Other("boom".into())).status(), 500);
    }
}
