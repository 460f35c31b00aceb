//! `/clusters/new`: register a cluster by its fields or a kubeconfig.

use super::*;

/// `/clusters/new`: by fields, or from a kubeconfig.
#[component]
pub(super) fn NewCluster() -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let error = RwSignal::new(None::<String>);
    let add = Action::new(move |input: &ClusterInput| add_cluster(input.clone()));
    let import = Action::new(move |import: &KubeconfigImport| add_cluster_from_kubeconfig(import.clone()));
    let done = move |result: Option<Result<String, crate::error::AppError>>| match result {
        Some(Ok(name)) => {
            toasts.success(format!("Cluster {name} registered."));
            navigate(&format!("/clusters/{}", urlencode(&name)), Default::default());
        }
        Some(Err(e)) => error.set(Some(e.to_string())),
        None => {}
    };
    let done2 = done.clone();
    Effect::new(move |_| done(add.value().get()));
    Effect::new(move |_| done2(import.value().get()));
    let on_fields = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let get = |k: &str| crate::pages::form_field(&ev, k);
        error.set(None);
        add.dispatch(ClusterInput {
            name: get("name"),
            api_url: get("api_url"),
            ca_pem: get("ca_pem"),
            credential: Some(Credential::Token { token: get("token") }),
            prometheus_url: get("prometheus_url"),
            alertmanager_url: get("alertmanager_url"),
            grafana_url: get("grafana_url"),
            prometheus_credential: source_credential(&get, "prometheus"),
            alertmanager_credential: source_credential(&get, "alertmanager"),
            grafana_credential: source_credential(&get, "grafana"),
        });
    };
    let on_kubeconfig = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let get = |k: &str| crate::pages::form_field(&ev, k);
        error.set(None);
        let context = get("context");
        import.dispatch(KubeconfigImport {
            name: get("name"),
            kubeconfig: get("kubeconfig"),
            context: (!context.trim().is_empty()).then_some(context),
        });
    };
    let busy = move || add.pending().get() || import.pending().get();
    view! {
        <Title text="Add cluster" />
        <section class="page narrow">
            <h1>"Add cluster"</h1>
            <p class="hint">"Pangea checks that the API server answers with a certificate the CA signed, that the credentials work, and that they may impersonate users and groups, so that every action runs as the person who asks. See docs/clusters.md for the ClusterRole to bind."</p>
            <div class="alert error" role="alert" hidden=move || error.get().is_none()>{move || error.get()}</div>
            <h2>"From fields"</h2>
            <form on:submit=on_fields aria-busy=move || busy().to_string()>
                <label for="cluster-name">"Name"</label>
                <input id="cluster-name" name="name" required placeholder="edge-1" />
                <label for="cluster-api">"API server URL"</label>
                <input id="cluster-api" name="api_url" required placeholder="https://10.0.0.10:6443" />
                <label for="cluster-ca">"CA bundle (PEM; empty: the system's roots)"</label>
                <textarea id="cluster-ca" name="ca_pem" rows="4"></textarea>
                <label for="cluster-token">"Pangea's bearer token (stored sealed, never shown again)"</label>
                <input id="cluster-token" name="token" type="password" required autocomplete="off" />
                <label for="cluster-prometheus">"Prometheus URL (optional)"</label>
                <input id="cluster-prometheus" name="prometheus_url" />
                <SourceCredentialFields source="prometheus" label="Prometheus" />
                <label for="cluster-alertmanager">"Alertmanager URL (optional)"</label>
                <input id="cluster-alertmanager" name="alertmanager_url" />
                <SourceCredentialFields source="alertmanager" label="Alertmanager" />
                <label for="cluster-grafana">"Grafana URL (optional)"</label>
                <input id="cluster-grafana" name="grafana_url" />
                <SourceCredentialFields source="grafana" label="Grafana" />
                <button type="submit" class="button primary" disabled=busy>"Check and add"</button>
            </form>
            <h2>"From a kubeconfig"</h2>
            <form on:submit=on_kubeconfig>
                <label for="kc-name">"Name"</label>
                <input id="kc-name" name="name" required placeholder="edge-1" />
                <label for="kc-text">"kubeconfig (kubectl config view --raw --flatten)"</label>
                <textarea id="kc-text" name="kubeconfig" rows="8" required></textarea>
                <label for="kc-context">"Context (empty: the current context)"</label>
                <input id="kc-context" name="context" />
                <button type="submit" class="button" disabled=busy>"Check and add"</button>
            </form>
        </section>
    }
}

/// The credential Pangea presents to a linked source, from the add form's fields.
fn source_credential(get: &impl Fn(&str) -> String, source: &str) -> Option<SourceCredential> {
    let field = |name: &str| get(&format!("{source}_{name}"));
    match field("auth").as_str() {
        "bearer" => Some(SourceCredential::Bearer { token: field("token") }),
        "basic" => Some(SourceCredential::Basic { username: field("username"), password: field("password") }),
        "client_certificate" => Some(SourceCredential::ClientCertificate {
            certificate_pem: field("certificate"),
            key_pem: field("key"),
            ca_pem: field("ca"),
        }),
        _ => None,
    }
}

/// A linked source's credential: its kind, and the fields each kind reads.
#[component]
fn SourceCredentialFields(source: &'static str, label: &'static str) -> impl IntoView {
    let id = |name: &str| format!("{source}-{name}");
    let name = |field: &str| format!("{source}_{field}");
    view! {
        <details class="source-credential">
            <summary>{format!("{label} credentials (optional; stored sealed, never shown again)")}</summary>
            <label for=id("auth")>"Kind"</label>
            <select id=id("auth") name=name("auth")>
                <option value="none">"None"</option>
                <option value="bearer">"Bearer token"</option>
                <option value="basic">"Basic: user name and password"</option>
                <option value="client_certificate">"Client certificate (mTLS)"</option>
            </select>
            <label for=id("token")>"Bearer token"</label>
            <input id=id("token") name=name("token") type="password" autocomplete="off" />
            <label for=id("username")>"User name"</label>
            <input id=id("username") name=name("username") autocomplete="off" />
            <label for=id("password")>"Password"</label>
            <input id=id("password") name=name("password") type="password" autocomplete="off" />
            <label for=id("certificate")>"Client certificate (PEM)"</label>
            <textarea id=id("certificate") name=name("certificate") rows="3"></textarea>
            <label for=id("key")>"Client key (PEM)"</label>
            <textarea id=id("key") name=name("key") rows="3"></textarea>
            <label for=id("ca")>"CA of the source's certificate (PEM; empty: the system's roots)"</label>
            <textarea id=id("ca") name=name("ca") rows="3"></textarea>
        </details>
    }
}
