//! Views the server draws and sends as HTML, for pages to insert whole: charts, tables and
//! facts that only show data. Neither their views nor the readers of their data are in the
//! wasm, which keeps only what reacts to people (forms, buttons, hover), the buttons through
//! the `data-` attributes the server gave them.

use crate::components::messages::ErrorBlock;
use crate::error::AppError;
use crate::resource::Resource;
use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// HTML the server drew. Only the server makes one ([`Html::of`]), from a view whose text and
/// attributes it escaped as in every page it renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Html(String);

impl Html {
    #[cfg(feature = "ssr")]
    pub fn of(view: impl IntoView) -> Html {
        Html(view.into_view().to_html())
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A page the server drew whole, with the title for the browser's tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Titled {
    pub title: String,
    pub html: Html,
}

impl From<Titled> for Html {
    fn from(page: Titled) -> Html {
        page.html
    }
}

/// Where a job the page follows stands, drawn, and whether it still runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub html: Html,
    pub running: bool,
}

/// What a page shows of a job it follows: nothing yet, where it stands, or why asking failed.
pub type ShownJob = RwSignal<Option<Result<Progress, AppError>>>;

/// Asks `ask` where a job stands until it no longer runs, `pause_ms` apart, showing each answer
/// in `shown`.
pub async fn follow<Fut>(ask: impl Fn() -> Fut, shown: ShownJob, pause_ms: u32)
where
    Fut: Future<Output = Result<Progress, AppError>>,
{
    loop {
        let now = ask().await;
        let running = now.as_ref().is_ok_and(|p| p.running);
        shown.set(Some(now));
        if !running {
            return;
        }
        #[cfg(feature = "hydrate")]
        gloo_timers::future::TimeoutFuture::new(pause_ms).await;
        #[cfg(not(feature = "hydrate"))]
        let _ = pause_ms;
    }
}

/// The job's progress `shown` holds, as the server drew it, or the error.
#[component]
pub fn ShownProgress(shown: ShownJob) -> impl IntoView {
    move || {
        shown.get().map(|now| match now {
            Ok(progress) => view! { <div class="drawn" inner_html=progress.html.into_string()></div> }.into_any(),
            Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
        })
    }
}

/// A table in its scrolling wrapper, with a header row of `columns` over `rows`.
#[cfg(feature = "ssr")]
pub fn table(columns: &[&'static str], rows: impl IntoView) -> impl IntoView {
    let heads = columns.iter().map(|column| view! { <th scope="col">{*column}</th> }).collect_view();
    view! { <div class="table-wrap"><table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table></div> }
}

/// The `data-` attributes that controls in drawn HTML carry and the pages' handlers read: the
/// drawn view sets one with `custom_attribute(data::NAME, value)`, the handler reads the same
/// name, so the two cannot drift apart.
pub mod data {
    /// A drain's job, on its "Cancel drain" button.
    pub const CANCEL_DRAIN: &str = "data-cancel";
    /// On an import preview's "Import" button, when every line is good.
    pub const COMMIT_IMPORT: &str = "data-commit";
    /// A discovered machine's MAC, on its "Show" button.
    pub const WATCH_MAC: &str = "data-watch";
    /// A discovered machine's MAC, on its checkbox.
    pub const SELECT_MAC: &str = "data-mac";
    /// A dashboard variable's name, on its control.
    pub const VARIABLE: &str = "data-variable";
    /// An alert's labels, one `name=value` a line, on its "Silence" button.
    pub const SILENCE_MATCHERS: &str = "data-matchers";
    /// A silence's id, on its "Expire" button.
    pub const EXPIRE_SILENCE: &str = "data-silence";
    /// An imported dashboard's uid, on its "Remove" button.
    pub const REMOVE_DASHBOARD: &str = "data-remove";
    /// A Grafana dashboard's uid, on its "Import" button.
    pub const IMPORT_DASHBOARD: &str = "data-import";
    /// A Grafana dashboard's kiosk path through the proxy, and its title, on its button.
    pub const EMBED_PATH: &str = "data-embed";
    /// A power action (`PowerAction::as_str`), on its button on a machine's page.
    pub const POWER_ACTION: &str = "data-power";
    /// On a machine's "Remove BMC" button.
    pub const REMOVE_BMC: &str = "data-remove-bmc";
    /// What a power run's button does (`pause`, `resume`, `cancel`) and the run's job, as
    /// `what:job`.
    pub const STEER_RUN: &str = "data-steer";
    /// On a machine's "Acknowledge hardware changes" button.
    pub const ACKNOWLEDGE_HARDWARE: &str = "data-acknowledge";
    /// On a machine class's Delete button: the class's name.
    pub const DELETE_CLASS: &str = "data-delete-class";
    /// On a finished discovery's "Preview the import" button.
    pub const IMPORT_DISCOVERED: &str = "data-import-discovered";
    pub const EMBED_TITLE: &str = "data-title";
    /// A chart table row's place on the x axis.
    pub const CHART_X: &str = "data-x";
}

/// The button carrying `attribute` that a click inside drawn HTML hit, and the attribute's value.
pub fn clicked_button(ev: &leptos::ev::MouseEvent, attribute: &str) -> Option<(web_sys::Element, String)> {
    use wasm_bindgen::JsCast;
    let button = ev.target()?.dyn_into::<web_sys::Element>().ok()?.closest(&format!("button[{attribute}]")).ok()??;
    let value = button.get_attribute(attribute)?;
    Some((button, value))
}

/// The elements under `parent` that match `selector`.
pub fn elements(parent: &web_sys::Element, selector: &str) -> Vec<web_sys::Element> {
    use wasm_bindgen::JsCast;
    let Ok(list) = parent.query_selector_all(selector) else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.item(i)?.dyn_into::<web_sys::Element>().ok()).collect()
}

/// What the server drew for `drawn`, kept on screen while it is asked again, or the error.
#[component]
pub fn Drawn<T>(drawn: Resource<Result<T, AppError>>) -> impl IntoView
where
    T: Into<Html> + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    view! {
        <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
            {move || Suspend::new(async move {
                match drawn.await {
                    Ok(html) => view! { <div class="drawn" inner_html=html.into().into_string()></div> }.into_any(),
                    Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}
