//! Pages, one module per URL.

pub mod access;
pub mod audit;
pub mod clusters;
pub mod dashboards;
pub mod home;
pub mod login;
pub mod machines;
pub mod monitoring;
pub mod not_found;
pub mod provisioning;

use crate::access::Permission;

/// The permission a page needs, by its path (the routes of [`crate::App`]); `None` for pages
/// anyone signed in may open (`/access` shows everyone their own sessions, and admins more).
/// The server answers 403 to anyone without it, and the navigation shows only the pages a
/// person may open.
pub fn permission_for_page(path: &str) -> Option<Permission> {
    let path = path.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if path == "/machines/new" || path == "/machines/import" || path == "/machines/discover" {
        Some(Permission::ChangeMachines)
    } else if under("/machines") {
        Some(Permission::ViewMachines)
    } else if path == "/provisioning/import" || under("/provisioning/new") {
        Some(Permission::ChangeProvisioning)
    } else if under("/provisioning") {
        Some(Permission::ViewProvisioning)
    } else if path == "/clusters/new" {
        Some(Permission::ManageClusters)
    } else if under("/clusters") {
        Some(Permission::ViewClusters)
    } else if under("/audit") {
        Some(Permission::ViewAudit)
    } else {
        None
    }
}

/// Whether the page at `path` loads its code lazily (every area but the login page).
pub fn is_lazy_page(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    ["/machines", "/provisioning", "/clusters", "/access", "/audit"]
        .iter()
        .any(|area| path == *area || path.starts_with(&format!("{area}/")))
}

/// The text of a submitted form's field `name` (empty when it has none).
pub fn form_field(ev: &leptos::ev::SubmitEvent, name: &str) -> String {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
        .and_then(|form| web_sys::FormData::new_with_form(&form).ok())
        .and_then(|data| data.get(name).as_string())
        .unwrap_or_default()
}

/// The text of the file chosen in the `<input type="file">` that sent `ev`.
#[cfg(feature = "hydrate")]
pub async fn read_file(ev: leptos::ev::Event) -> Option<String> {
    use wasm_bindgen::JsCast;
    let input: web_sys::HtmlInputElement = ev.target()?.dyn_into().ok()?;
    let file = input.files()?.get(0)?;
    wasm_bindgen_futures::JsFuture::from(file.text()).await.ok()?.as_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_the_permission_they_need() {
        assert_eq!(permission_for_page("/machines?q=a"), Some(Permission::ViewMachines));
        assert_eq!(permission_for_page("/machines/12"), Some(Permission::ViewMachines));
        assert_eq!(permission_for_page("/machines/new"), Some(Permission::ChangeMachines));
        assert_eq!(permission_for_page("/machines/import/"), Some(Permission::ChangeMachines));
        assert_eq!(permission_for_page("/audit/3"), Some(Permission::ViewAudit));
        assert_eq!(permission_for_page("/provisioning/groups/g1"), Some(Permission::ViewProvisioning));
        assert_eq!(permission_for_page("/provisioning/explain?query=mac"), Some(Permission::ViewProvisioning));
        assert_eq!(permission_for_page("/provisioning/import"), Some(Permission::ChangeProvisioning));
        assert_eq!(permission_for_page("/provisioning/new/profile"), Some(Permission::ChangeProvisioning));
        assert_eq!(permission_for_page("/clusters/edge-1/nodes/n1"), Some(Permission::ViewClusters));
        assert_eq!(permission_for_page("/clusters/new"), Some(Permission::ManageClusters));
        assert_eq!(permission_for_page("/access"), None, "everyone's own sessions");
        assert_eq!(permission_for_page("/accessories"), None);
        assert_eq!(permission_for_page("/login"), None);
        assert!(is_lazy_page("/machines?q=1") && is_lazy_page("/audit/3") && is_lazy_page("/access"));
        assert!(!is_lazy_page("/login") && !is_lazy_page("/") && !is_lazy_page("/accessories"));
    }
}
