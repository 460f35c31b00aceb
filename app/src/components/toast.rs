//! Short messages about what just happened, announced to screen readers.

use leptos::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    Success,
    Error,
}

#[derive(Clone)]
struct Toast {
    id: u64,
    kind: ToastKind,
    text: String,
}

/// Posts toasts; get it with `use_context::<Toasts>()` below a [`ToastProvider`].
#[derive(Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
}

impl Toasts {
    pub fn show(&self, kind: ToastKind, text: impl Into<String>) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.list.update(|l| l.push(Toast { id, kind, text: text.into() }));
        let list = self.list;
        set_timeout(
            move || list.update(|l| l.retain(|t| t.id != id)),
            std::time::Duration::from_secs(if kind == ToastKind::Error { 12 } else { 5 }),
        );
    }
    pub fn success(&self, text: impl Into<String>) {
        self.show(ToastKind::Success, text)
    }
    pub fn error(&self, text: impl Into<String>) {
        self.show(ToastKind::Error, text)
    }
    fn dismiss(&self, id: u64) {
        self.list.update(|l| l.retain(|t| t.id != id));
    }
}

pub fn use_toasts() -> Toasts {
    expect_context::<Toasts>()
}

/// Announces each outcome of `action`: the error, or `success(value)` after running `then`.
pub fn toast_outcome<I, T>(
    action: Action<I, Result<T, crate::error::AppError>>,
    success: impl Fn(&T) -> String + 'static,
    then: impl Fn() + 'static,
) where
    I: Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    let toasts = use_toasts();
    Effect::new(move |_| {
        if let Some(result) = action.value().get() {
            match result {
                Ok(value) => {
                    then();
                    toasts.success(success(&value));
                }
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
}

#[component]
pub fn ToastProvider(children: Children) -> impl IntoView {
    let toasts = Toasts { list: RwSignal::new(Vec::new()), next_id: StoredValue::new(0) };
    provide_context(toasts);
    view! {
        {children()}
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || toasts.list.get() key=|t| t.id let:toast>
                <div class="toast" class:error=toast.kind == ToastKind::Error>
                    <span>{toast.text.clone()}</span>
                    <button type="button" class="button ghost small" aria-label="Dismiss" on:click=move |_| toasts.dismiss(toast.id)>
                        "×"
                    </button>
                </div>
            </For>
        </div>
    }
}
