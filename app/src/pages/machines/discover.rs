//! `/machines/discover`: discovery by BMC, the way in for racks whose MACs nobody wrote down.
//! The form takes BMC addresses (a list, ranges, small networks) and one user and password;
//! the server asks each BMC for its systems and NICs, drawn as it goes, then previews and writes
//! the import of the systems that are not machines yet, with their BMCs.

use crate::drawn::{ShownJob, ShownProgress, clicked_button, data, follow};
use crate::pages::form_field;
use crate::power::DiscoveryInput;
use crate::power::server_fns::{discovery_status, import_discovered, start_discovery};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

#[component]
pub fn DiscoverByBmc() -> impl IntoView {
    let shown = ShownJob::new(None);
    let imported = ShownJob::new(None);
    let job = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = DiscoveryInput {
            addresses: form_field(&ev, "addresses"),
            username: form_field(&ev, "username"),
            password: form_field(&ev, "password"),
            verify_off: form_field(&ev, "verify_off") == "on",
            ca_pem: String::new(),
        };
        imported.set(None);
        spawn_local(async move {
            match start_discovery(input).await {
                Ok(id) => {
                    job.set(Some(id.clone()));
                    follow(|| discovery_status(id.clone()), shown, 1000).await;
                }
                Err(e) => shown.set(Some(Err(e))),
            }
        });
    };
    // "Preview the import" in the drawn discovery, then "Import N machines" in the drawn preview.
    let import = move |ev: leptos::ev::MouseEvent| {
        let dry_run = if clicked_button(&ev, data::IMPORT_DISCOVERED).is_some() {
            true
        } else if clicked_button(&ev, data::COMMIT_IMPORT).is_some() {
            false
        } else {
            return;
        };
        let Some(id) = job.get_untracked() else { return };
        spawn_local(async move {
            imported.set(Some(import_discovered(id.clone(), dry_run).await));
            if !dry_run {
                shown.set(Some(discovery_status(id).await));
            }
        });
    };
    view! {
        <Title text="Discover by BMC" />
        <section class="page">
            <h1>"Discover machines by BMC"</h1>
            <p class="hint">"Pangea asks each BMC (Redfish, with the same user on each) for its systems and their NICs' MAC addresses, and offers the systems that are not machines yet through the import's preview, with their BMCs. A system's MAC is its first NIC with a link up."</p>
            <form class="discover" on:submit=submit aria-label="Discover by BMC">
                <div class="field">
                    <label for="discover-addresses">"BMC addresses"</label>
                    <textarea id="discover-addresses" name="addresses" required rows="3" aria-describedby="discover-addresses-hint"></textarea>
                    <p class="hint" id="discover-addresses-hint">"Addresses, ranges (10.0.0.10-40), networks of at most 1024 addresses (10.0.1.0/26) or URLs (https://bmc-7.example.com), separated by spaces, commas or lines; https unless a URL says http."</p>
                </div>
                <div class="field">
                    <label for="discover-user">"BMC user"</label>
                    <input id="discover-user" name="username" required autocomplete="off" />
                </div>
                <div class="field">
                    <label for="discover-password">"BMC password"</label>
                    <input id="discover-password" name="password" type="password" required autocomplete="new-password" />
                </div>
                <div class="field">
                    <label><input type="checkbox" name="verify_off" />" Accept any certificate (not checked: shown as a warning on each BMC)"</label>
                </div>
                <button type="submit" class="button primary">"Discover"</button>
            </form>
            <section aria-label="Discovery" on:click=import>
                <ShownProgress shown />
                <ShownProgress shown=imported />
            </section>
        </section>
    }
}
