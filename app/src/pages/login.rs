//! `/login`: the sign-in page. A plain form, so it works before (and without) hydration.

use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn message(code: &str) -> Option<&'static str> {
    match code {
        "invalid" => Some("The user name or password is wrong."),
        "throttled" => {
            Some("Too many failed sign-ins. Wait a little (the wait doubles with each failure), then try again.")
        }
        "too_long" => Some("User names have at most 256 characters and passwords at most 1024 bytes."),
        "disabled" => Some("Local sign-in is turned off on this server. Use single sign-on."),
        "sso_unreachable" => Some(
            "Pangea cannot reach the identity provider right now. Try again shortly, or use the local admin account.",
        ),
        "sso_denied" => Some("The identity provider refused the sign-in (for example, it was cancelled there)."),
        "sso_state" => Some("That sign-in expired or was already used. Start again."),
        "sso_exchange" => Some(
            "The identity provider did not accept Pangea's credentials. An admin should check the OIDC client id and secret.",
        ),
        "sso_token" => Some(
            "The identity provider's answer failed verification (its clock may be off, or it is misconfigured). The server log has details.",
        ),
        "sso_claims" => {
            Some("The identity provider did not say who you are. An admin should check the user-name claim setting.")
        }
        "sso_refused" => {
            Some("That account cannot sign in here: it is disabled, or its name belongs to a local account.")
        }
        "sso_off" => Some("Single sign-on is not configured on this server."),
        "sso_groups" => Some(
            "Your identity provider did not send your groups, so Pangea cannot tell your role. Nothing was \
             changed; try again in a moment.",
        ),
        "session_groups" => Some(
            "Your session ended: your identity provider no longer says which groups you are in, so Pangea cannot \
             tell your role. Sign in again; if this repeats, an admin should check the provider's groups claim.",
        ),
        "sso_unverified" => Some(
            "Your identity provider has not verified your email address, so it cannot name your Pangea account. \
             Verify it there, then sign in again.",
        ),
        _ => None,
    }
}

#[component]
pub fn Login() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    let error = move || query.read().get("error").and_then(|c| message(&c));
    let signed_out = move || query.read().get("signed_out").is_some();
    let methods = resource(|| (), |_| crate::account::sign_in_methods());
    let sso_href = move || format!("/auth/oidc/start?next={}", next());
    view! {
        <Title text="Sign in" />
        <section class="page narrow login">
            <h1>"Sign in to Pangea"</h1>
            <Show when=signed_out>
                <p class="alert success" role="status">"You are signed out."</p>
            </Show>
            {move || error().map(|e| view! { <p class="alert error" role="alert" id="login-error">{e}</p> })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let methods = methods.await.ok();
                    let sso = methods.as_ref().is_some_and(|m| m.single_sign_on);
                    let local = methods.is_none_or(|m| m.local_password);
                    view! {
                        {sso.then(|| view! {
                            <p><a class="button primary" href=sso_href rel="external">"Sign in with single sign-on"</a></p>
                        })}
                        {(sso && local).then(|| view! { <p class="hint">"Or, with the local admin account:"</p> })}
                        {local.then(|| view! { <LocalForm next=Signal::derive(next) /> })}
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn LocalForm(next: Signal<String>) -> impl IntoView {
    view! {
            <form method="post" action="/auth/login" class="login-form">
                <input type="hidden" name="next" value=next />
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
    }
}
