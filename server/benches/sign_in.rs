//! Benchmark: Pangea's own share of a single sign-on, apart from the time spent waiting for the
//! IdP, over 100 sign-ins against the test OpenID provider. Prints p50/p95.
//!
//!     node end2end/oidc/provider.mjs 4700 secret http://127.0.0.1:1/unused &
//!     PANGEA_BENCH_OIDC_ISSUER=http://127.0.0.1:4700 cargo bench -p server --bench sign_in
//!
//! Both steps answer admins with `Server-Timing`: `/auth/oidc/start` with `pangea;dur=…` (all
//! its own; each round starts from a local admin session, so the header is sent), the callback
//! with `idp;dur=…, pangea;dur=…`, its time minus its requests to the IdP (code exchange, and
//! userinfo when the ID token lacks the groups). A sign-in that fails, or ends without the
//! admin role, stops the bench. Goal (issue 3): < 5 ms of Pangea time per sign-in.

use pangea::AppState;
use pangea::access::sso::OidcSettings;
use pangea::config::{Config, LogFormat};
use secrecy::SecretString;
use std::time::Duration;

mod support;
use support::percentile;

const WARM_UP: usize = 5;

fn timing(header: &str, name: &str) -> Option<f64> {
    header.split(',').map(str::trim).find(|m| m.starts_with(name))?.split("dur=").nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() {
    let Ok(issuer) = std::env::var("PANGEA_BENCH_OIDC_ISSUER") else {
        println!("sign_in: skipped (start the test IdP and set PANGEA_BENCH_OIDC_ISSUER)");
        return;
    };
    let sign_ins = support::sized(100usize, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public: url::Url = format!("http://{addr}").parse().unwrap();
    let redirect = public.join("/auth/oidc/callback").unwrap();
    // The IdP may have been started a moment ago (`node … &`): wait for it to answer, 10 s at most.
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    for _ in 0..100 {
        if reqwest::get(&discovery).await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let client: serde_json::Value = reqwest::Client::new()
        .post(format!("{issuer}/reg"))
        .json(&serde_json::json!({"redirect_uris": [redirect.as_str()], "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}))
        .send()
        .await
        .expect("register a client at the IdP")
        .json()
        .await
        .unwrap();
    let config = Config {
        listen: addr,
        boot_listen: "127.0.0.1:0".parse().unwrap(),
        boot_url: "http://127.0.0.1:8080".into(),
        data_dir: dir.path().into(),
        assets_dir: dir.path().join("assets"),
        grpc: None,
        boot_retention: Default::default(),
        database_url: SecretString::from(format!("sqlite://{}/bench.db?mode=rwc", dir.path().display())),
        log_format: LogFormat::Human,
        site_root: dir.path().join("site"),
        site_embedded: false,
        public_url: public.clone(),
        local_login_enabled: true,
        session_idle_timeout: Duration::from_secs(3600),
        session_absolute_timeout: Duration::from_secs(7200),
        live_recheck_every: pangea::http::live::RECHECK_EVERY,
        job_lease: pangea::jobs::LEASE,
        power_settle: pangea::power::SETTLE,
        bootstrap_admin_group: Some("pangea-admins".into()),
        bootstrap_password: Some(SecretString::from("bench-password")),
        oidc: Some(OidcSettings {
            issuer: issuer.parse().unwrap(),
            client_id: client["client_id"].as_str().unwrap().into(),
            client_secret: SecretString::from(client["client_secret"].as_str().unwrap().to_string()),
            redirect_url: redirect,
            post_logout_url: public.join("/login").unwrap(),
            extra_scopes: vec![],
            username_claim: "email".into(),
            groups_claim: "groups".into(),
            refresh_every: Duration::from_secs(300),
        }),
        secret_key: None,
        audit_key: None,
        trusted_proxies: vec![],
        allow_local_monitoring_urls: true,
        grafana: pangea::config::GrafanaPlacement::Off,
        power_refresh: std::time::Duration::from_secs(60),
        hardware_refresh: std::time::Duration::from_secs(3600),
    };
    let state = AppState::new(&config).await.expect("start");
    let router = pangea::routes::console_router(state);
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });

    let (mut start_ms, mut callback_ms, mut idp_ms, mut total_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..sign_ins + WARM_UP {
        let stop_at_callback = reqwest::redirect::Policy::custom(|a| {
            if a.url().path() == "/auth/oidc/callback" { a.stop() } else { a.follow() }
        });
        let browser = reqwest::Client::builder().cookie_store(true).redirect(stop_at_callback).build().unwrap();
        let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let origin = public.origin().ascii_serialization();
        let admin = no_follow
            .post(public.join("/auth/login").unwrap())
            .header("origin", &origin)
            .form(&[("username", "admin"), ("password", "bench-password")])
            .send()
            .await
            .unwrap();
        let admin_cookie = admin.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let start = no_follow
            .get(public.join("/auth/oidc/start").unwrap())
            .header("cookie", &admin_cookie)
            .send()
            .await
            .unwrap();
        let start_time = timing(start.headers()["server-timing"].to_str().unwrap(), "pangea").unwrap();
        let idp_url = start.headers()["location"].to_str().unwrap().to_string();
        // The sign-in on its way through the IdP is in a cookie of its own until the callback.
        let pending = start
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok()?.split(';').next())
            .find(|c| c.starts_with("pangea_sso="))
            .expect("the start sets the pending sign-in's cookie")
            .to_string();
        let cookie = format!("{admin_cookie}; {pending}");
        let form = browser.get(&idp_url).send().await.unwrap();
        let action = format!("{}{}/login", form.url().origin().ascii_serialization(), form.url().path());
        let back =
            browser.post(action).form(&[("login", "alice"), ("password", "alice-password")]).send().await.unwrap();
        let callback = back.headers()["location"].to_str().unwrap().to_string();
        let done = no_follow.get(&callback).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(done.headers()["location"], "/", "sign-in {i} failed");
        let session = done
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok()?.split(';').next())
            .find(|c| !c.starts_with("pangea_sso="))
            .expect("the callback sets the session's cookie")
            .to_string();
        let me: serde_json::Value = no_follow
            .post(public.join("/api/gui/current_user").unwrap())
            .header("origin", &origin)
            .header("cookie", session)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["role"], "admin", "sign-in {i} lost alice's groups: {me}");
        let header = done.headers()["server-timing"].to_str().unwrap().to_string();
        if i >= WARM_UP {
            start_ms.push(start_time);
            let own = timing(&header, "pangea").unwrap();
            callback_ms.push(own);
            total_ms.push(start_time + own);
            idp_ms.push(timing(&header, "idp").unwrap());
        }
    }
    for v in [&mut start_ms, &mut callback_ms, &mut idp_ms, &mut total_ms] {
        v.sort_by(f64::total_cmp);
    }
    println!("sign_in: {sign_ins} single sign-ons (after {WARM_UP} warm-up), times in ms");
    println!("sign_in: {:<44} {:>8} {:>8}", "", "p50", "p95");
    for (label, v) in [
        ("/auth/oidc/start (all Pangea, Server-Timing)", &start_ms),
        ("callback: Pangea's own time (Server-Timing)", &callback_ms),
        ("callback: waiting for the IdP (Server-Timing)", &idp_ms),
        ("Pangea's time per sign-in (start + callback)", &total_ms),
    ] {
        println!("sign_in: {label:<44} {:>8.2} {:>8.2}", percentile(v, 0.5), percentile(v, 0.95));
    }
}
