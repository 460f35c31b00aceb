//! `/machines/classes`: machine classes, saved searches over labels and hardware
//! (`cpus>=32 and memory_gib>=256 and disks.ssd>=2`) that name a kind of machine, with how many
//! machines each matches now. Operators add, change and delete them; everyone sees them.

use crate::components::messages::ErrorBlock;
use crate::components::text::{short_time, urlencode};
use crate::components::toast::use_toasts;
use crate::machines::MachineClassInput;
use crate::machines::server_fns::{delete_machine_class, list_machine_classes, save_machine_class};
use crate::pages::form_field;
use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn MachineClasses() -> impl IntoView {
    let toasts = use_toasts();
    let changed = RwSignal::new(0u32);
    let classes = resource(move || changed.get(), |_| list_machine_classes());
    let me = resource(|| (), |_| crate::account::current_user());
    let form_error = RwSignal::new(None::<String>);
    let save =
        Action::new(|(name, input): &(String, MachineClassInput)| save_machine_class(name.clone(), input.clone()));
    let delete = Action::new(|name: &String| delete_machine_class(name.clone()));
    Effect::new(move |_| match save.value().get() {
        Some(Ok(class)) => {
            form_error.set(None);
            toasts.success(format!("Class {} saved: {} machines match it now.", class.name, class.members));
            changed.update(|n| *n += 1);
        }
        Some(Err(e)) => form_error.set(Some(e.to_string())),
        None => {}
    });
    Effect::new(move |_| match delete.value().get() {
        Some(Ok(())) => {
            toasts.success("Class deleted.".to_string());
            changed.update(|n| *n += 1);
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = MachineClassInput { query: form_field(&ev, "query"), description: form_field(&ev, "description") };
        save.dispatch((form_field(&ev, "name").trim().to_string(), input));
    };
    view! {
        <Title text="Machine classes" />
        <section class="page">
            <h1>"Machine classes"</h1>
            <p class="hint">"A class is a saved search over labels and hardware, such as cpus>=32 and memory_gib>=256 and disks.ssd>=2, to pick machines by. Saving a class with a name that exists replaces it."</p>
            <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    let can_change = me.await.ok().flatten().is_some_and(|m| m.may(crate::access::Permission::ChangeMachines));
                    let table = match classes.await {
                        Ok(list) if list.is_empty() => view! { <p>"No classes yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="table">
                                <thead><tr>
                                    <th scope="col">"Class"</th><th scope="col">"Search"</th><th scope="col">"Machines"</th>
                                    <th scope="col">"Description"</th><th scope="col">"Changed"</th>
                                    {can_change.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|c| {
                                        let href = format!("/machines?class={}", urlencode(&c.name));
                                        let name = c.name.clone();
                                        view! { <tr>
                                            <td><A href=href>{c.name.clone()}</A></td>
                                            <td><code>{c.query}</code></td>
                                            <td>{c.members}</td>
                                            <td>{c.description}</td>
                                            <td>{short_time(&c.updated_at)}</td>
                                            {can_change.then(|| view! { <td>
                                                <button type="button" class="button danger" aria-label=format!("Delete class {name}")
                                                    on:click=move |_| { delete.dispatch(name.clone()); }>"Delete"</button>
                                            </td> })}
                                        </tr> }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                    };
                    view! {
                        {table}
                        {can_change.then(|| view! {
                            <h2>"Add or change a class"</h2>
                            <form class="class-form" on:submit=submit aria-label="Machine class">
                                <div class="field">
                                    <label for="class-name">"Name"</label>
                                    <input id="class-name" name="name" required placeholder="storage-large" />
                                </div>
                                <div class="field">
                                    <label for="class-query">"Search"</label>
                                    <input id="class-query" name="query" required placeholder="cpus>=32 and memory_gib>=256 and disks.ssd>=2" />
                                </div>
                                <div class="field">
                                    <label for="class-description">"Description"</label>
                                    <input id="class-description" name="description" />
                                </div>
                                {move || form_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                                <button type="submit" class="button primary">"Save class"</button>
                            </form>
                        })}
                    }
                })}
            </Transition>
        </section>
    }
}
