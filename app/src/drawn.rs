//! Views the server draws and sends as HTML, for pages to insert whole: charts, tables and
//! facts that only show data. Neither their views nor the readers of their data are in the
//! wasm, which keeps only what reacts to people (forms, buttons, hover), the buttons through
//! the `data-` attributes the server gave them.

use crate::error::AppError;
use crate::pages::machines::ErrorBlock;
use crate::resource::Resource;
use leptos::prelude::*;
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

/// A table in its scrolling wrapper, with a header row of `columns` over `rows`.
#[cfg(feature = "ssr")]
pub fn table(columns: &[&'static str], rows: impl IntoView) -> impl IntoView {
    let heads = columns.iter().map(|column| view! { <th scope="col">{*column}</th> }).collect_view();
    view! { <div class="table-wrap"><table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table></div> }
}

/// The button carrying `attribute` that a click inside drawn HTML hit, and the attribute's value.
pub fn clicked_button(ev: &leptos::ev::MouseEvent, attribute: &str) -> Option<(web_sys::Element, String)> {
    use wasm_bindgen::JsCast;
    let button = ev.target()?.dyn_into::<web_sys::Element>().ok()?.closest(&format!("button[{attribute}]")).ok()??;
    let value = button.get_attribute(attribute)?;
    Some((button, value))
}

/// What the server drew for `drawn`, kept on screen while it is asked again, or the error.
#[component]
pub fn Drawn(drawn: Resource<Result<Html, AppError>>) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
            {move || Suspend::new(async move {
                match drawn.await {
                    Ok(html) => view! { <div class="drawn" inner_html=html.into_string()></div> }.into_any(),
                    Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}
