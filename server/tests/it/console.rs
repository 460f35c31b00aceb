//! The console as a whole: operations endpoints, headers, pages, the loopback rule and the API
//! description.

use crate::support;

on_both_backends_with_own_app!(
    health_readiness_and_metrics_answer,
    readiness_fails_when_the_database_is_gone,
    pages_render_with_a_nonce_csp_and_security_headers,
    unknown_pages_are_404_and_say_so,
    responses_are_compressed_for_clients_that_ask,
    openapi_describes_every_machine_route,
    server_function_errors_keep_their_http_status,
    boot_listener_answers_like_matchbox_and_lists_nothing,
    site_files_need_no_session_or_database,
    https_brings_hsts_and_a_host_only_cookie,
    unknown_methods_share_one_metrics_label,
);

use crate::support::{Backend, spawn_app};
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt;

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    // Two machines that never booted, and the job of an import preview, counted as the
    // background counts them every 15 s.
    for mac in ["52:54:00:00:00:01", "52:54:00:00:00:02"] {
        app.create(serde_json::json!({ "mac": mac })).await;
    }
    let preview = app
        .post_json("/api/gui/start_import", serde_json::json!({"format": "csv", "text": "mac\n52:54:00:00:00:03\n"}))
        .await;
    assert!(preview.status().is_success(), "{}", preview.text().await.unwrap());
    assert_eq!(app.get("/healthz").await.text().await.unwrap(), "ok\n");
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.get("/api/v1/machines").await;
    app.state.metrics.count(&app.state.db).await.unwrap();
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("pangea_http_requests_total{method=\"GET\",route=\"/api/v1/machines\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pangea_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("pangea_db_pool_connections"));
    let name = format!("{backend:?}").to_lowercase();
    assert!(metrics.contains(&format!("pangea_build_info{{version=\"0.1.0\",backend=\"{name}\"}} 1")), "{metrics}");
    assert!(metrics.contains("pangea_machines{state=\"never_seen\"} 2"), "{metrics}");
    assert!(metrics.contains("pangea_jobs{kind=\"machine.import\",state="), "{metrics}");
    // A scrape answers from memory: with the database gone, /metrics still answers the counts.
    app.state.db.pool().close().await;
    let scrape = reqwest::get(app.at("/metrics")).await.unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(scrape.text().await.unwrap().contains("pangea_machines{state=\"never_seen\"} 2"));
}

async fn readiness_fails_when_the_database_is_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    app.state.db.pool().close().await;
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn pages_render_with_a_nonce_csp_and_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/machines").await;
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).and_then(|s| s.split('\'').next()).unwrap().to_string();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.contains_key("x-request-id"));
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "inline scripts carry the nonce");
    assert!(html.contains("<h1>Machines</h1>"));
}

async fn unknown_pages_are_404_and_say_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Page not found"));
    let res = app.get("/api/v1/nothing").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "not_found");
}

async fn responses_are_compressed_for_clients_that_ask(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.client.get(app.at("/api/v1/openapi.json")).header("accept-encoding", "br").send().await.unwrap();
    assert_eq!(res.headers()["content-encoding"], "br");
}

async fn openapi_describes_every_machine_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = app.get_json("/api/v1/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    for path in ["/api/v1/machines", "/api/v1/machines/{id}", "/api/v1/machines/import", "/api/v1/machines/export.csv"]
    {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys());
    }
    assert!(doc["components"]["schemas"]["AppError"].is_object());
}

async fn server_function_errors_keep_their_http_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.post_json("/api/gui/create_machine", serde_json::json!({"input": {"mac": "nope"}})).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid");
    assert_eq!(body["fields"][0]["field"], "mac");
    let res = app.post_json("/api/gui/get_machine", serde_json::json!({"id": 12345})).await;
    assert_eq!(res.status(), 404);
}

async fn boot_listener_answers_like_matchbox_and_lists_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create(serde_json::json!({"mac": "52:54:00:00:00:01"})).await;
    let boot = pangea::routes::boot_router(app.state.clone());
    let res = boot.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    for path in ["/api/v1/machines", "/machines", "/metrics"] {
        let res = boot.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

async fn site_files_need_no_session_or_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.data_dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("favicon.svg"), "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
    app.state.db.pool().close().await;
    // The signed-in client's cookie would need the database to resolve; a site file does not ask.
    assert_eq!(app.get("/favicon.svg").await.status(), 200);
}

async fn https_brings_hsts_and_a_host_only_cookie(backend: Backend) {
    let plain = spawn_app(backend).await;
    assert!(plain.get("/healthz").await.headers().get("strict-transport-security").is_none());
    let app =
        support::spawn_app_with(backend, async |c| c.public_url = "https://pangea.example.com".parse().unwrap()).await;
    let res = app.get("/healthz").await;
    assert_eq!(res.headers()["strict-transport-security"], "max-age=63072000; includeSubDomains");
    let login = app
        .anonymous()
        .post(app.at("/auth/login"))
        .form(&[("username", "admin"), ("password", support::ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-pangea_session=") && cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
}

async fn unknown_methods_share_one_metrics_label(backend: Backend) {
    let app = spawn_app(backend).await;
    for method in ["PROPFIND", "BREW", "X-ANYTHING-0001"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.client.request(method, app.at("/healthz")).send().await.unwrap();
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    for raw in ["PROPFIND", "BREW", "X-ANYTHING"] {
        assert!(!metrics.contains(raw), "{raw} became a label: {metrics}");
    }
}
