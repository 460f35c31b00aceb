//! `/provisioning/new/:what`: a new profile, group or template.

use super::*;

/// `/provisioning/new/:what`: a new profile, group or template.
#[component]
pub(super) fn NewProvisioningItem(what: String) -> impl IntoView {
    let what = StoredValue::new(what);
    let what = move || what.get_value();
    view! {
        <Title text="New" />
        <section class="page narrow">
            <RequirePermission permission=Permission::ChangeProvisioning what="Changing provisioning">
                {move || match what().as_str() {
                    "profile" => view! { <h1>"New profile"</h1><ProfileForm profile=None may_change=true /> }.into_any(),
                    "group" => view! { <h1>"New group"</h1><GroupForm group=None may_change=true /> }.into_any(),
                    "template" => view! { <h1>"New template"</h1><TemplateForm template=None may_change=true /> }.into_any(),
                    _ => view! { <ErrorBlock error=AppError::not_found("Create a profile, a group or a template.") /> }.into_any(),
                }}
            </RequirePermission>
        </section>
    }
}
