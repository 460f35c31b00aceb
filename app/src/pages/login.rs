//! `/login`: the sign-in page. A plain form, so it works before (and without) hydration.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn message(code: &str) -> Option<&'static str> {
    match code {
        "invalid" => Some("The user name or password is wrong."),
        "throttled" => Some("Too many failed sign-ins. Wait 15 minutes, then try again."),
        "disabled" => Some("Local sign-in is turned off on this server. Use single sign-on."),
        _ => None,
    }
}

#[component]
pub fn Login() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/machines".into());
    let error = move || query.read().get("error").and_then(|c| message(&c));
    let signed_out = move || query.read().get("signed_out").is_some();
    view! {
        <Title text="Sign in" />
        <section class="page narrow login">
            <h1>"Sign in to Pangea"</h1>
            <Show when=signed_out>
                <p class="alert success" role="status">"You are signed out."</p>
            </Show>
            {move || error().map(|e| view! { <p class="alert error" role="alert" id="login-error">{e}</p> })}
            <form method="post" action="/auth/login" class="login-form">
                <input type="hidden" name="next" prop:value=next />
                <div class="field">
                    <label for="login-username">"User name"</label>
                    <input id="login-username" name="username" autocomplete="username" required />
                </div>
                <div class="field">
                    <label for="login-password">"Password"</label>
                    <input id="login-password" name="password" type="password" autocomplete="current-password" required />
                </div>
                <button type="submit" class="button primary">"Sign in"</button>
            </form>
        </section>
    }
}
