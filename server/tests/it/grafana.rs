//! The `/grafana/{cluster}/` proxy against Grafana's documented auth-proxy contract, header by
//! header, on the console's origin (`--grafana-same-origin`) and on one of its own
//! (`--grafana-listen`, signed in by the console's hand-over). Grafana has no package here, so the upstream is a small HTTP server of the test's that
//! answers `/api/health` as Grafana does, echoes every other request's method, path and headers,
//! and echoes the bytes of an upgraded connection (as Grafana Live's WebSocket would carry them).

use crate::support;

use crate::support::kube::{input, person, unique};
use crate::support::{Backend, TestApp, spawn_app_with, spawn_app_with_grafana_origin};
use app::access::{ConsoleRole, Principal};
use app::clusters::ssr::ClusterService;
use app::monitoring::ssr::MonitoringService;
use axum::extract::Request;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Needs a kube-apiserver (see the note in `main.rs`).
mod needs_kube {
    use super::*;
    on_both_backends_with_own_app!(
        grafana_gets_the_console_person_and_nothing_the_browser_claims,
        grafana_on_its_own_origin_signs_in_by_the_consoles_hand_over_only
    );
}

/// The stand-in upstream: Grafana's health answer, an echo of each request, and byte echo after
/// an upgrade.
async fn upstream() -> String {
    async fn answer(mut req: Request) -> axum::response::Response {
        if req.uri().path() == "/api/health" {
            return axum::Json(json!({ "database": "ok", "version": "test" })).into_response();
        }
        // Grafana's search answers only someone its auth proxy signed in.
        if req.uri().path().ends_with("/api/search") {
            return match req.headers().get("x-webauth-user") {
                Some(_) => {
                    axum::Json(json!([{ "uid": "abc", "title": "Nodes", "folderTitle": "Pangea" }])).into_response()
                }
                None => axum::http::StatusCode::UNAUTHORIZED.into_response(),
            };
        }
        // A dashboard's JSON model, as Grafana's API answers it, to those it signed in.
        if let Some(uid) = req.uri().path().split("/api/dashboards/uid/").nth(1) {
            let known = uid == "abc" && req.headers().get("x-webauth-user").is_some();
            if !known {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            }
            return axum::Json(json!({
                "meta": { "slug": "nodes" },
                "dashboard": { "uid": "abc", "title": "Nodes", "schemaVersion": 39, "panels": [
                    { "id": 1, "type": "stat", "title": "Targets up", "targets": [{ "refId": "A", "expr": "sum(up)" }] },
                    { "id": 2, "type": "piechart", "title": "Jobs", "targets": [{ "refId": "A", "expr": "count by (job) (up)" }] }
                ] }
            }))
            .into_response();
        }
        if req.headers().get("upgrade").is_some() {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = hyper_util::rt::TokioIo::new(upgrade.await.unwrap());
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            return (
                axum::http::StatusCode::SWITCHING_PROTOCOLS,
                [("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-accept", "test")],
            )
                .into_response();
        }
        let headers: BTreeMap<String, Vec<String>> = req
            .headers()
            .keys()
            .map(|k| {
                (k.to_string(), req.headers().get_all(k).iter().map(|v| v.to_str().unwrap().to_string()).collect())
            })
            .collect();
        let path = req.uri().path_and_query().unwrap().to_string();
        let mut response = (
            [
                ("x-frame-options", "deny"),
                ("x-upstream", "grafana"),
                ("service-worker-allowed", "/"),
                // Grafana's own policy (`content_security_policy = true`) says nothing of framing.
                ("content-security-policy", "script-src 'self'"),
            ],
            axum::Json(json!({ "method": req.method().as_str(), "path": path, "headers": headers })),
        )
            .into_response();
        // A Grafana that tries to set the console's session, beside its own cookie.
        for cookie in ["pangea_session=planted; Path=/", "grafana_session=g2; Path=/grafana/"] {
            response.headers_mut().append("set-cookie", cookie.parse().unwrap());
        }
        response
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(answer)).await.unwrap() });
    url
}

/// What the upstream saw of a request through the proxy.
async fn through(client: &reqwest::Client, app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = client.get(app.at(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn header<'a>(seen: &'a Value, name: &str) -> Option<&'a str> {
    seen["headers"][name][0].as_str()
}

/// Sends `request` (a request line and headers) as is, with `Host` and the end of the headers;
/// the connection, and the response's head.
async fn raw(app: &TestApp, request: &str) -> (tokio::net::TcpStream, String) {
    let address = app.url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    socket.write_all(format!("{request}Host: {address}\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    (socket, String::from_utf8(head).unwrap())
}

/// Signs in with the form and returns the session cookie, as a browser would keep it.
async fn session_cookie(app: &TestApp, name: &str, password: &str) -> String {
    let res = app
        .anonymous()
        .post(app.at("/auth/login"))
        .form(&[("username", name), ("password", password), ("next", "/machines")])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// The Content-Security-Policy headers of a response, in order.
fn policies(res: &reqwest::Response) -> Vec<&str> {
    res.headers().get_all("content-security-policy").iter().map(|v| v.to_str().unwrap()).collect()
}

/// Registers cluster `name` with the stand-in Grafana at `grafana`.
async fn with_grafana(app: &TestApp, kube: &support::kube::Kube, name: &str, grafana: &str) {
    let mut linked = input(kube, name, &kube.pangea_token);
    linked.grafana_url = grafana.to_string();
    linked.grafana_credential = None;
    app.state.clusters.add(&Principal::cli(), linked).await.unwrap();
}

async fn grafana_gets_the_console_person_and_nothing_the_browser_claims(backend: Backend) {
    let Some(kube) = support::kube::shared() else { return };
    let app = spawn_app_with(backend, async |c| c.grafana = pangea::config::GrafanaPlacement::SameOrigin).await;
    let grafana = upstream().await;
    let name = unique("graphs");
    let mut linked = input(&kube, &name, &kube.pangea_token);
    linked.grafana_url = grafana.clone();
    // A token or password for Grafana would stand in for every person there: refused.
    linked.grafana_credential = Some(app::clusters::SourceCredential::Bearer { token: "pangea-to-grafana".into() });
    let refused = app.state.clusters.add(&Principal::cli(), linked.clone()).await.unwrap_err();
    assert!(refused.field("grafana_credential").unwrap().contains("auth proxy"), "{refused}");
    linked.grafana_credential = None;
    app.state.clusters.add(&Principal::cli(), linked).await.unwrap();
    let base = format!("/grafana/{name}");
    let admin = app.sign_in("admin", support::ADMIN_PASSWORD).await;

    // The admin, with a browser that claims to be someone else: Grafana hears only the console.
    let cookies = format!("{}; grafana_session=g1", session_cookie(&app, "admin", support::ADMIN_PASSWORD).await);
    let (status, seen) = through(
        &app.anonymous(),
        &app,
        &format!("{base}/d/abc/node?orgId=1&kiosk"),
        &[
            ("X-WEBAUTH-USER", "mallory"),
            ("x-webauth-role", "Admin"),
            ("X-WEBAUTH-GROUPS", "grafana-admins"),
            ("Authorization", "Bearer stolen"),
            ("Cookie", &cookies),
        ],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["path"], format!("{base}/d/abc/node?orgId=1&kiosk"), "served from the sub-path as is: {seen}");
    assert_eq!(seen["headers"]["x-webauth-user"], json!(["admin"]), "one user, the console's");
    assert_eq!(header(&seen, "x-webauth-name"), Some("admin"));
    assert_eq!(header(&seen, "x-webauth-role"), Some("Admin"));
    assert!(seen["headers"]["x-webauth-groups"].is_null(), "a local admin has no groups: {seen}");
    assert!(seen["headers"]["authorization"].is_null(), "{seen}");
    let cookies = header(&seen, "cookie").unwrap();
    assert!(cookies.contains("grafana_session=g1") && !cookies.contains("pangea_session"), "{cookies}");

    // The proxy's security headers: the console may frame Grafana; nothing frames the console.
    let res = admin.get(app.at(&format!("{base}/"))).send().await.unwrap();
    assert_eq!(res.headers()["x-frame-options"], "SAMEORIGIN", "Grafana's own deny is replaced");
    assert_eq!(policies(&res), ["script-src 'self'", "frame-ancestors 'self'"], "Grafana's, and the proxy's");
    assert_eq!(res.headers()["x-upstream"], "grafana");
    let set: Vec<&str> = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(set, ["grafana_session=g2; Path=/grafana/"], "Grafana may not set the console's session");
    assert!(res.headers().get("service-worker-allowed").is_none());
    // Paths that would leave this cluster's Grafana are refused before Grafana hears of them
    // (sent raw: an HTTP client would resolve them first).
    let admin_cookie = session_cookie(&app, "admin", support::ADMIN_PASSWORD).await;
    for escape in ["%2e%2e/%2e%2e/alertmanager/api/v2/silences", "x%2F..%2Fy", "../../x"] {
        let (_, head) = raw(&app, &format!("GET {base}/{escape} HTTP/1.1\r\nCookie: {admin_cookie}\r\n")).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{escape}: {head}");
    }
    let page = admin.get(app.at("/machines")).send().await.unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));

    // Roles: viewer → Viewer, operator → Editor; a role on this cluster only counts here.
    app.add_local_user("victor", ConsoleRole::Viewer).await;
    app.add_local_user("olga", ConsoleRole::Operator).await;
    app.add_local_user("tess", None).await;
    app.state.access.bind_in(&Principal::cli(), "user", "tess", ConsoleRole::Operator, &name).await.unwrap();
    app.add_local_user("nobody", None).await;
    for (user, role) in [("victor", "Viewer"), ("olga", "Editor"), ("tess", "Editor")] {
        let client = app.sign_in(user, &format!("{user}-password")).await;
        let (status, seen) = through(&client, &app, &format!("{base}/api/user"), &[]).await;
        assert_eq!((status, header(&seen, "x-webauth-role")), (200, Some(role)), "{user}: {seen}");
        assert_eq!(header(&seen, "x-webauth-user"), Some(user));
    }
    let nobody = app.sign_in("nobody", "nobody-password").await;
    assert_eq!(nobody.get(app.at(&format!("{base}/api/user"))).send().await.unwrap().status(), 403);

    // Only the console's session signs in: not an API token, and not nobody.
    let token = app.token(ConsoleRole::Admin).await;
    let res = app.anonymous().get(app.at(&format!("{base}/api/user"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 303, "a token is no session: to the login page");
    let res = app.anonymous().get(app.at(&format!("{base}/"))).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?next="));

    // A WebSocket (Grafana Live) passes through: the upgrade, then bytes both ways.
    let cookie = session_cookie(&app, "victor", "victor-password").await;
    // From another origin (a GET, so no cross-site check ran): refused.
    let res = app
        .anonymous()
        .get(app.at(&format!("{base}/api/live/ws")))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (mut socket, head) = raw(
        &app,
        &format!(
            "GET {base}/api/live/ws HTTP/1.1\r\nCookie: {cookie}\r\nOrigin: {}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            app.origin
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_lowercase().contains("sec-websocket-accept: test"), "{head}");
    socket.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    socket.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
    // Victor signs out of the console: the WebSocket ends at its next check.
    let res = app.anonymous().post(app.at("/auth/logout")).header("cookie", &cookie).send().await.unwrap();
    assert!(res.status().is_redirection() || res.status().is_success(), "{}", res.status());
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut echoed)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the WebSocket outlived its session: {closed:?}");

    // The Dashboards page lists the Grafana's dashboards, asked as the person, to embed in kiosk
    // mode through the proxy.
    let dashboards: Value =
        admin.get(app.at(&format!("/api/v1/clusters/{name}/dashboards"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        dashboards,
        json!([{ "uid": "abc", "title": "Nodes", "folder": "Pangea", "embed_path": format!("{base}/d/abc?orgId=1&kiosk") }])
    );

    // A Grafana dashboard is imported into Pangea, asked as the person, and audited; Pangea
    // draws what it can and sends the rest to Grafana.
    let res =
        admin.post(app.at(&format!("/api/v1/clusters/{name}/grafana-dashboards/abc/import"))).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let imported: Value = res.json().await.unwrap();
    assert_eq!(
        (imported["uid"].as_str(), imported["origin"].as_str()),
        (Some("abc"), Some(format!("grafana:{name}").as_str()))
    );
    let view: Value = admin
        .get(app.at(&format!("/api/v1/clusters/{name}/dashboards/abc")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["grafana_path"], format!("{base}/d/abc"));
    assert_eq!(view["panels"][1]["kind"], json!({ "type": "other", "name": "piechart" }));
    let audit = app.get_json("/api/v1/audit?action=dashboard.import").await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target_id"] == "abc")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!((entry["actor"].as_str(), entry["outcome"].as_str()), (Some("admin"), Some("success")));
    // Someone with a role on another cluster only does not see what came from this one's Grafana.
    let mut elsewhere = person("dana@example.com", &[], ConsoleRole::Viewer);
    elsewhere.role = None;
    elsewhere.cluster_roles.insert("elsewhere".into(), ConsoleRole::Viewer);
    let listed = app.state.monitoring.list_dashboards(&elsewhere).await.unwrap();
    assert!(listed.iter().all(|d| d.uid != "abc") && listed.iter().any(|d| d.shipped), "{listed:?}");
    let res =
        admin.post(app.at(&format!("/api/v1/clusters/{name}/grafana-dashboards/nope/import"))).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("has no dashboard nope that you may see"));
    let victor = app.sign_in("victor", "victor-password").await;
    let res =
        victor.post(app.at(&format!("/api/v1/clusters/{name}/grafana-dashboards/abc/import"))).send().await.unwrap();
    assert_eq!(res.status(), 403, "a viewer may not import");

    // A cluster that is removed has no Grafana any more.
    app.state.clusters.remove(&Principal::cli(), &name).await.unwrap();
    let res = admin.get(app.at(&format!("{base}/"))).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

/// The location a response sends the browser to.
fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

async fn grafana_on_its_own_origin_signs_in_by_the_consoles_hand_over_only(backend: Backend) {
    let Some(kube) = support::kube::shared() else { return };
    let (app, grafana_origin) = spawn_app_with_grafana_origin(backend).await;
    let grafana = upstream().await;
    let (name, other) = (unique("own-origin"), unique("own-other"));
    with_grafana(&app, &kube, &name, &grafana).await;
    with_grafana(&app, &kube, &other, &grafana).await;
    let console_cookie = session_cookie(&app, "admin", support::ADMIN_PASSWORD).await;
    let as_admin = |path: &str| app.anonymous().get(app.at(path)).header("cookie", &console_cookie);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // The console's /grafana/… hands over: to Grafana's origin, with a one-time code and the page.
    let res = as_admin(&format!("/grafana/{name}/d/abc?orgId=1&kiosk")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["cache-control"], "no-store", "a one-time code is kept by no cache");
    let handover = location(&res);
    let prefix = format!("{grafana_origin}/pangea-handover/{name}?code=");
    assert!(handover.starts_with(&prefix), "{handover}");
    assert!(handover.ends_with(&format!("&next=%2Fgrafana%2F{name}%2Fd%2Fabc%3ForgId%3D1%26kiosk")), "{handover}");

    // Grafana's origin redeems it for a pass of its own, a cookie for this cluster's Grafana only.
    let res = no_redirects.get(&handover).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("/grafana/{name}/d/abc?orgId=1&kiosk"));
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.starts_with("pangea_grafana=")
            && set.ends_with(&format!("; Path=/grafana/{name}/; HttpOnly; SameSite=Lax")),
        "{set}"
    );
    let pass = set.split(';').next().unwrap().to_string();
    assert!(!set.contains(console_cookie.split('=').nth(1).unwrap()), "the console's session id never goes there");
    // Once: the same link again is refused.
    let again = no_redirects.get(&handover).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert!(again.text().await.unwrap().contains("used already or has expired"));

    // The pass signs in to this cluster's Grafana as the console's person; Pangea's cookies stay.
    let on_grafana = |path: &str| no_redirects.get(format!("{grafana_origin}{path}"));
    let res = on_grafana(&format!("/grafana/{name}/d/abc?orgId=1&kiosk"))
        .header("cookie", format!("{pass}; grafana_session=g1; {console_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(policies(&res), ["script-src 'self'".to_string(), format!("frame-ancestors {}", app.origin)]);
    assert!(res.headers().get("x-frame-options").is_none(), "only the CSP can name the console as a framer");
    let seen: Value = res.json().await.unwrap();
    assert_eq!(header(&seen, "x-webauth-user"), Some("admin"));
    assert_eq!(header(&seen, "cookie"), Some("grafana_session=g1"), "no Pangea cookie reaches Grafana: {seen}");

    // Nothing else signs in there: no cookie, the console's own cookie, or this pass on another
    // cluster's Grafana.
    for (path, cookie) in [
        (format!("/grafana/{name}/api/user"), String::new()),
        (format!("/grafana/{name}/api/user"), console_cookie.clone()),
        (format!("/grafana/{other}/api/user"), pass.clone()),
    ] {
        let res = on_grafana(&path).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path} with {cookie:?}");
    }
    // Its writes come from its own pages only.
    let write = |origin: &str| {
        no_redirects
            .post(format!("{grafana_origin}/grafana/{name}/api/dashboards/db"))
            .header("cookie", &pass)
            .header("origin", origin)
            .send()
    };
    assert_eq!(write(&app.origin).await.unwrap().status(), 403);
    assert_eq!(write(&grafana_origin).await.unwrap().status(), 200);
    // The console's routes are not served there.
    for path in ["/api/v1/machines", "/api/gui/current_user", "/machines"] {
        let res = on_grafana(path).header("cookie", &pass).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }

    // The console answers its API to its own pages only: a script on Grafana's origin (a fetch
    // that says it is same-site or cross-site) is refused, reads included.
    for site in ["same-site", "cross-site"] {
        let res = as_admin("/api/v1/machines").header("sec-fetch-site", site).send().await.unwrap();
        assert_eq!(res.status(), 403, "{site} read");
        let res = app
            .anonymous()
            .post(app.at("/api/gui/current_user"))
            .header("cookie", &console_cookie)
            .header("sec-fetch-site", site)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{site} server function");
    }
    assert_eq!(
        as_admin("/api/v1/machines").header("sec-fetch-site", "same-origin").send().await.unwrap().status(),
        200
    );
    // The console's pages may frame Grafana's origin.
    let page = as_admin("/machines").send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains(&format!("frame-src 'self' {grafana_origin};")), "{csp}");

    // A hand-over leaves the cluster's Grafana for nowhere else, and an expired code is refused.
    let res = as_admin(&format!("/grafana/{name}/")).send().await.unwrap();
    let code = location(&res).split("code=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let elsewhere = format!("{grafana_origin}/pangea-handover/{name}?code={code}&next=%2Fgrafana%2F{other}%2F");
    assert_eq!(no_redirects.get(&elsewhere).send().await.unwrap().status(), 400);
    sqlx::query("UPDATE origin_handovers SET expires_at = 0").execute(app.state.db.pool()).await.unwrap();
    let expired = format!("{grafana_origin}/pangea-handover/{name}?code={code}&next=%2Fgrafana%2F{name}%2F");
    assert_eq!(no_redirects.get(&expired).send().await.unwrap().status(), 401);
    // A code is for its cluster: redeemed for another, it is refused (and used up).
    let res = as_admin(&format!("/grafana/{name}/")).send().await.unwrap();
    let code = location(&res).split("code=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let crossed = format!("{grafana_origin}/pangea-handover/{other}?code={code}&next=%2Fgrafana%2F{other}%2F");
    assert_eq!(no_redirects.get(&crossed).send().await.unwrap().status(), 401);

    // Only the console's own pages are handed over: not another origin's script or frame (one
    // cluster's Grafana opening another's), and only for a cluster with a Grafana.
    let res = as_admin(&format!("/grafana/{other}/")).header("sec-fetch-site", "same-site").send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        as_admin(&format!("/grafana/{other}/")).header("sec-fetch-site", "same-origin").send().await.unwrap().status(),
        303
    );
    assert_eq!(as_admin("/grafana/no-such-cluster/").send().await.unwrap().status(), 404);
    assert_eq!(as_admin("/grafana/Not_A_Name/").send().await.unwrap().status(), 400);

    // The pass lasts while the console session is in use: idle past its timeout, it is refused.
    let user_api = format!("/grafana/{name}/api/user");
    let seen: String =
        sqlx::query_scalar("SELECT MAX(last_seen_at) FROM user_sessions").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(on_grafana(&user_api).header("cookie", &pass).send().await.unwrap().status(), 200);
    let set_seen = async |at: &str| {
        sqlx::query("UPDATE user_sessions SET last_seen_at = $1").bind(at).execute(app.state.db.pool()).await.unwrap()
    };
    set_seen("2000-01-01T00:00:00.000000Z").await;
    assert_eq!(on_grafana(&user_api).header("cookie", &pass).send().await.unwrap().status(), 401);
    set_seen(&seen).await;

    // The pass lasts as long as the console session: signing out there ends it here.
    let res = app.anonymous().post(app.at("/auth/logout")).header("cookie", &console_cookie).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let res = on_grafana(&format!("/grafana/{name}/api/user")).header("cookie", &pass).send().await.unwrap();
    assert_eq!(res.status(), 401);
}
