//! Messages a person reads: a failed load, a field's error.

use crate::error::AppError;
use leptos::prelude::*;

/// Shows an error as a block a person can read, for a failed load.
#[component]
pub fn ErrorBlock(error: AppError) -> impl IntoView {
    view! { <div class="alert error" role="alert">{error.to_string()}</div> }
}

/// An inline error message under a form field; the id lets the field name it with aria-describedby.
#[component]
pub fn FieldMessage(#[prop(into)] id: String, #[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <p class="field-error" id=id role="alert" hidden=move || message.get().is_none()>
            {move || message.get()}
        </p>
    }
}
