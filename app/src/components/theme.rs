//! Light and dark themes. With no choice saved the OS preference rules (CSS `prefers-color-scheme`);
//! a choice made with the toggle is saved in localStorage and set as `data-theme` on `<html>`.

use leptos::prelude::*;

const STORAGE_KEY: &str = "pangea-theme";

/// Inline script run in `<head>` before first paint.
pub const APPLY_SAVED_THEME_JS: &str = "try{var t=localStorage.getItem('pangea-theme');if(t==='light'||t==='dark')document.documentElement.dataset.theme=t}catch(e){}";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Theme {
    System,
    Light,
    Dark,
}

impl Theme {
    fn next(self) -> Theme {
        match self {
            Theme::System => Theme::Light,
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::System,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Theme::System => "Theme: system",
            Theme::Light => "Theme: light",
            Theme::Dark => "Theme: dark",
        }
    }
    fn stored(self) -> Option<&'static str> {
        match self {
            Theme::System => None,
            Theme::Light => Some("light"),
            Theme::Dark => Some("dark"),
        }
    }
}

#[cfg(feature = "hydrate")]
fn saved_theme() -> Theme {
    let saved = window().local_storage().ok().flatten().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
    match saved.as_deref() {
        Some("light") => Theme::Light,
        Some("dark") => Theme::Dark,
        _ => Theme::System,
    }
}

#[cfg(feature = "hydrate")]
fn apply(theme: Theme) {
    let root = document().document_element();
    let storage = window().local_storage().ok().flatten();
    if let (Some(root), Some(storage)) = (root, storage) {
        match theme.stored() {
            Some(value) => {
                let _ = root.set_attribute("data-theme", value);
                let _ = storage.set_item(STORAGE_KEY, value);
            }
            None => {
                let _ = root.remove_attribute("data-theme");
                let _ = storage.remove_item(STORAGE_KEY);
            }
        }
    }
}

/// A button that cycles system → light → dark and remembers the choice.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let theme = RwSignal::new(Theme::System);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| theme.set(saved_theme()));
    let toggle = move |_| {
        let next = theme.get_untracked().next();
        theme.set(next);
        #[cfg(feature = "hydrate")]
        apply(next);
    };
    let _ = STORAGE_KEY;
    view! {
        <button type="button" class="button ghost theme-toggle" data-theme-choice=move || theme.get().stored().unwrap_or("system") on:click=toggle>
            {move || theme.get().label()}
        </button>
    }
}
