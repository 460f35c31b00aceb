//! `/machines/classes`: machine classes, saved searches over labels and hardware
//! (`cpus>=32 and memory_gib>=256 and disks.ssd>=2`) that name a kind of machine, with how many
//! machines each matches now (drawn on the server). Operators add, change and delete them;
//! everyone sees them.

use crate::drawn::{ShownJob, ShownProgress, clicked_button, data};
use crate::machines::MachineClassInput;
use crate::machines::server_fns::{delete_machine_class, list_machine_classes, save_machine_class};
use crate::pages::form_field;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

#[component]
pub fn MachineClasses() -> impl IntoView {
    let toasts = crate::components::toast::use_toasts();
    let shown = ShownJob::new(None);
    let changed = RwSignal::new(0u32);
    let form_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        changed.track();
        spawn_local(async move { shown.set(Some(list_machine_classes().await)) });
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = form_field(&ev, "name").trim().to_string();
        let input = MachineClassInput { query: form_field(&ev, "query"), description: form_field(&ev, "description") };
        spawn_local(async move {
            match save_machine_class(name, input).await {
                Ok(class) => {
                    form_error.set(None);
                    toasts.success(format!("Class {} saved: {} machines match it now.", class.name, class.members));
                    changed.update(|n| *n += 1);
                }
                Err(e) => form_error.set(Some(e.to_string())),
            }
        });
    };
    let delete = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, name)) = clicked_button(&ev, data::DELETE_CLASS) {
            spawn_local(async move {
                match delete_machine_class(name).await {
                    Ok(()) => {
                        toasts.success("Class deleted.".to_string());
                        changed.update(|n| *n += 1);
                    }
                    Err(e) => toasts.error(e.to_string()),
                }
            });
        }
    };
    view! {
        <Title text="Machine classes" />
        <section class="page">
            <h1>"Machine classes"</h1>
            <p class="hint">"A class is a saved search over labels and hardware, such as cpus>=32 and memory_gib>=256 and disks.ssd>=2, to pick machines by. Saving a class with a name that exists replaces it; operators change classes."</p>
            <section aria-label="Classes" on:click=delete><ShownProgress shown /></section>
            <h2>"Add or change a class"</h2>
            <form class="class-form" on:submit=submit aria-label="Machine class">
                <div class="field">
                    <label for="class-name">"Name"</label>
                    <input id="class-name" name="name" required aria-describedby="class-name-hint" />
                    <p class="hint" id="class-name-hint">"Lowercase letters, digits and hyphens, such as storage-large."</p>
                </div>
                <div class="field">
                    <label for="class-query">"Search"</label>
                    <input id="class-query" name="query" required aria-describedby="class-query-hint" />
                    <p class="hint" id="class-query-hint">"As the machine list's search, such as cpus>=32 and memory_gib>=256 and disks.ssd>=2."</p>
                </div>
                <div class="field">
                    <label for="class-description">"Description"</label>
                    <input id="class-description" name="description" />
                </div>
                {move || form_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" class="button primary">"Save class"</button>
            </form>
        </section>
    }
}
