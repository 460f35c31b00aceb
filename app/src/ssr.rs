//! What every server function shares on the server: the services the server put into the
//! request's context, the caller the console middleware resolved, and the one adapter that runs
//! a service call for that caller and answers its error with the error's HTTP status.

use crate::access::Principal;
use crate::error::{AppError, set_response_status};

/// The service (or other shared value) of type `S` the server provided to this request.
pub fn service<S: Clone + Send + Sync + 'static>() -> Result<S, AppError> {
    leptos::prelude::use_context::<S>().ok_or_else(|| AppError::Internal {
        request_id: format!("no {} in this request's context", std::any::type_name::<S>()),
    })
}

/// The caller, as the console middleware resolved it for this request.
pub async fn principal() -> Result<Principal, AppError> {
    leptos_axum::extract::<axum::Extension<Principal>>()
        .await
        .map(|axum::Extension(p)| p)
        .map_err(|_| AppError::Forbidden { message: "This request carries no identity.".into() })
}

/// Runs `call` with the service `S` and the caller; an error sets the response's status. Every
/// server function is this one line: the service method authorizes and audits inside itself.
pub async fn call<S, T, F, Fut>(call: F) -> Result<T, AppError>
where
    S: Clone + Send + Sync + 'static,
    F: FnOnce(S, Principal) -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    let result = match (service::<S>(), principal().await) {
        (Ok(service), Ok(who)) => call(service, who).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if let Err(error) = &result {
        set_response_status(error.status());
    }
    result
}
