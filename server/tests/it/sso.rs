//! Single sign-on against a real OpenID provider (npm oidc-provider, started by `.ci/test` at
//! PANGEA_TEST_OIDC_ISSUER). Each test registers its own client there, for its own callback URL.

on_both_backends_with_own_app!(
    a_person_signs_in_through_the_idp_with_the_role_of_their_group,
    a_group_without_a_binding_gets_nothing_until_an_admin_binds_it,
    a_replayed_or_forged_callback_is_refused,
    cancelling_at_the_idp_says_so,
    a_wrong_client_secret_is_reported_and_pangea_keeps_working,
    an_unreachable_idp_takes_down_only_single_sign_on,
    a_code_issued_to_another_client_is_refused,
    refresh_tokens_keep_sessions_alive_and_end_them_when_the_idp_disables_the_person,
    an_idp_whose_clock_is_hours_off_is_refused_with_a_clear_message,
    an_id_token_for_another_audience_is_refused,
    groups_come_from_the_id_token_even_when_userinfo_is_down,
    a_failed_userinfo_call_fails_the_sign_in_when_the_groups_are_still_needed,
    the_configured_groups_claim_is_asked_for_as_a_scope,
    an_unverified_email_cannot_name_a_user,
    people_are_keyed_by_issuer_and_subject_not_by_name,
    a_refresh_brings_the_groups_the_idp_has_now,
    a_refresh_about_another_subject_leaves_the_groups_alone,
    a_refresh_that_names_no_groups_ends_the_session_and_the_next_page_says_why,
    a_session_without_a_refresh_token_is_rechecked_through_userinfo,
    a_refresh_token_this_server_cannot_open_ends_the_session,
    an_idp_that_refuses_pangea_itself_signs_nobody_out,
    a_missing_groups_claim_is_named_with_the_claims_that_arrived,
    a_signing_key_rotated_at_the_idp_is_fetched_when_first_seen,
    kubernetes_own_groups_from_the_idp_are_dropped_and_the_person_is_told,
    an_anonymous_start_writes_nothing_to_the_database,
);

use crate::support::{Backend, TestApp, spawn_app_with};
use app::access::{ConsoleRole, Principal};
use pangea::access::sso::OidcSettings;
use secrecy::SecretString;
use serde_json::{Value, json};

fn issuer() -> String {
    std::env::var("PANGEA_TEST_OIDC_ISSUER")
        .expect("PANGEA_TEST_OIDC_ISSUER is not set: run the tests with .ci/test, which starts a test OpenID provider")
}

/// Registers a confidential client at the test IdP; returns its id and secret.
async fn register_client(issuer: &str, redirect: &str) -> (String, String) {
    register_client_for(issuer, redirect, &["authorization_code", "refresh_token"]).await
}

/// Registers a confidential client allowed `grants` (without "refresh_token", it gets no
/// refresh tokens).
async fn register_client_for(issuer: &str, redirect: &str, grants: &[&str]) -> (String, String) {
    let res: Value = reqwest::Client::new()
        .post(format!("{issuer}/reg"))
        .json(&json!({
            "redirect_uris": [redirect],
            "grant_types": grants,
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (res["client_id"].as_str().unwrap().into(), res["client_secret"].as_str().unwrap().into())
}

const WITH_REFRESH: &[&str] = &["authorization_code", "refresh_token"];

async fn spawn_with_sso(backend: Backend, issuer_url: &str, secret_override: Option<&str>) -> TestApp {
    spawn_with_sso_as(backend, issuer_url, secret_override, "groups", WITH_REFRESH).await
}

/// A console whose groups come from `groups_claim`, at the test IdP.
async fn spawn_with_sso_claim(backend: Backend, groups_claim: &str) -> TestApp {
    spawn_with_sso_as(backend, &issuer(), None, groups_claim, WITH_REFRESH).await
}

async fn spawn_with_sso_as(
    backend: Backend,
    issuer_url: &str,
    secret_override: Option<&str>,
    groups_claim: &str,
    grants: &[&str],
) -> TestApp {
    spawn_app_with(backend, async |config| {
        let redirect = config.public_url.join("/auth/oidc/callback").unwrap();
        let (client_id, secret) = if issuer_for_registration(issuer_url) {
            register_client_for(issuer_url, redirect.as_str(), grants).await
        } else {
            ("pangea".into(), "unused".into())
        };
        config.oidc = Some(OidcSettings {
            issuer: issuer_url.parse().unwrap(),
            client_id,
            client_secret: SecretString::from(secret_override.map(str::to_string).unwrap_or(secret)),
            redirect_url: redirect,
            post_logout_url: config.public_url.join("/login?signed_out=1").unwrap(),
            extra_scopes: vec![],
            username_claim: "email".into(),
            groups_claim: groups_claim.into(),
            refresh_every: std::time::Duration::ZERO,
        });
    })
    .await
}

/// Whether `issuer` is one of the live test IdPs, where clients can be registered (other
/// issuers in these tests are dead on purpose).
fn issuer_for_registration(issuer: &str) -> bool {
    ["PANGEA_TEST_OIDC_ISSUER", "PANGEA_TEST_SKEWED_OIDC_ISSUER"]
        .iter()
        .any(|v| std::env::var(v).ok().as_deref() == Some(issuer))
}

/// A user of the calling test's own at the test IdP: `(login, password)`.
async fn test_user(issuer: &str, spec: Value) -> (String, String) {
    let res = reqwest::Client::new().post(format!("{issuer}/test/users")).json(&spec).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    (user["login"].as_str().unwrap().into(), user["password"].as_str().unwrap().into())
}

/// A test user of the group `pangea-viewers` (bound to the viewer role), signed in through
/// the IdP: their login and client.
async fn signed_in_viewer(app: &TestApp, issuer: &str) -> (String, reqwest::Client) {
    let (login, password) = test_user(issuer, json!({"groups": ["pangea-viewers"]})).await;
    app.state.access.bind(&Principal::cli(), "group", "pangea-viewers", ConsoleRole::Viewer).await.unwrap();
    let (client, _) = sso_sign_in(app, &login, &password).await;
    assert_eq!(role_of(app, &client).await, "viewer");
    (login, client)
}

/// Sets the groups of a test user at the IdP (`null`: no groups claim at all).
async fn set_groups(issuer: &str, login: &str, groups: Value) {
    let res = reqwest::Client::new()
        .post(format!("{issuer}/test/users"))
        .json(&json!({"login": login, "groups": groups}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Asks `probe` up to 50 times, 100 ms apart, until `done` holds of its answer (for work that
/// runs in the background); returns the last answer.
async fn until<T, F: AsyncFn() -> T>(probe: F, done: impl Fn(&T) -> bool) -> T {
    let mut answer = probe().await;
    for _ in 0..50 {
        if done(&answer) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = probe().await;
    }
    answer
}

/// When the (one) session with a refresh token last asked the IdP.
async fn refreshed_at(app: &TestApp) -> String {
    sqlx::query_scalar::<_, String>("SELECT refreshed_at FROM user_sessions WHERE refresh_token <> ''")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
}

/// Who the console says `client` is.
async fn me(app: &TestApp, client: &reqwest::Client) -> Value {
    let res = client.post(app.at("/api/gui/current_user")).header("origin", app.url.as_str()).json(&json!({}));
    res.send().await.unwrap().json().await.unwrap()
}

async fn role_of(app: &TestApp, client: &reqwest::Client) -> Value {
    me(app, client).await["role"].clone()
}

async fn fail_userinfo(app: &TestApp) {
    let client_id = app.state.oidc.as_ref().unwrap().client_id().to_string();
    let res =
        reqwest::Client::new().post(format!("{}/test/userinfo-fails/{client_id}", issuer())).send().await.unwrap();
    assert_eq!(res.status(), 204);
}

async fn groups_come_from_the_id_token_even_when_userinfo_is_down(backend: Backend) {
    let app = spawn_with_sso(backend, &issuer(), None).await;
    fail_userinfo(&app).await;
    let (alice, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.path(), "/machines", "ended at {ended}");
    assert_eq!(role_of(&app, &alice).await, "admin", "pangea-admins, read from the ID token");
    let groups: String = sqlx::query_scalar("SELECT groups FROM users WHERE username = 'alice@example.com'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&groups).unwrap(), json!(["pangea-admins"]), "kept as a list");
}

async fn a_failed_userinfo_call_fails_the_sign_in_when_the_groups_are_still_needed(backend: Backend) {
    // "team" is in no ID token, so only userinfo could name it; and userinfo is down.
    let app = spawn_with_sso_claim(backend, "team").await;
    fail_userinfo(&app).await;
    let (_, ended) = sso_sign_in(&app, "olga", "olga-password").await;
    assert_eq!(ended.query(), Some("error=sso_groups"), "ended at {ended}");
    let page = app.anonymous().get(ended).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("did not send your groups"), "{page}");
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE source = 'oidc'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(users, 0, "nobody was signed in without their groups");
}

async fn the_configured_groups_claim_is_asked_for_as_a_scope(backend: Backend) {
    // The test IdP releases "roles" only to clients that ask for the scope "roles", like Keycloak.
    let app = spawn_with_sso_claim(backend, "roles").await;
    let (alice, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.path(), "/machines", "ended at {ended}");
    assert_eq!(role_of(&app, &alice).await, "admin");
}

async fn an_unverified_email_cannot_name_a_user(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let (login, password) = test_user(&issuer, json!({"groups": ["pangea-admins"], "email_verified": false})).await;
    let (_, ended) = sso_sign_in(&app, &login, &password).await;
    assert_eq!(ended.query(), Some("error=sso_unverified"), "ended at {ended}");
    let page = app.anonymous().get(ended).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("not verified"), "{page}");
}

async fn people_are_keyed_by_issuer_and_subject_not_by_name(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    sso_sign_in(&app, "alice", "alice-password").await;
    let (id, subject, stored_issuer): (i64, String, String) =
        sqlx::query_as("SELECT id, subject, issuer FROM users WHERE username = 'alice@example.com'")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    assert_eq!((subject.as_str(), stored_issuer.as_str()), ("alice", issuer.as_str()));
    // Her address changes at the IdP (here: the name Pangea last saw changes): still her account.
    sqlx::query("UPDATE users SET username = 'alice.old@example.com' WHERE id = $1")
        .bind(id)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    sso_sign_in(&app, "alice", "alice-password").await;
    let ids: Vec<(i64, String)> = sqlx::query_as("SELECT id, username FROM users WHERE source = 'oidc'")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(ids, vec![(id, "alice@example.com".to_string())]);
}

async fn a_refresh_brings_the_groups_the_idp_has_now(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let (login, client) = signed_in_viewer(&app, &issuer).await;
    set_groups(&issuer, &login, json!(["pangea-admins"])).await;
    let role = until(|| role_of(&app, &client), |r| *r == "admin").await;
    assert_eq!(role, "admin", "the groups of the refreshed ID token replace the old ones");
}

/// A refreshed ID token about somebody else (a broken IdP) must not hand its groups to this person.
async fn a_refresh_about_another_subject_leaves_the_groups_alone(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let (login, client) = signed_in_viewer(&app, &issuer).await;
    let idle = until(async || app.state.refreshing.lock().unwrap().is_empty(), |idle| *idle).await;
    assert!(idle);
    let client_id = app.state.oidc.as_ref().unwrap().client_id().to_string();
    let res = reqwest::Client::new().post(format!("{issuer}/test/other-subject/{client_id}")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    // Userinfo, which would name her groups, is down: nothing about her says her groups now.
    fail_userinfo(&app).await;
    set_groups(&issuer, &login, json!(["pangea-admins"])).await;
    let refreshed_at = || refreshed_at(&app);
    let before = refreshed_at().await;
    let attempted = until(
        async || {
            assert_eq!(role_of(&app, &client).await, "viewer");
            refreshed_at().await
        },
        |at| *at != before,
    )
    .await;
    assert_ne!(attempted, before, "a refresh was tried");
    let idle = until(async || app.state.refreshing.lock().unwrap().is_empty(), |idle| *idle).await;
    assert!(idle);
    assert_eq!(role_of(&app, &client).await, "viewer", "the groups of a token about someone else are not taken");
}

/// A refresh whose ID token and userinfo both lack the groups claim ends the session: the
/// groups of its sign-in must not count forever. Its next page says why, once.
async fn a_refresh_that_names_no_groups_ends_the_session_and_the_next_page_says_why(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let (login, client) = signed_in_viewer(&app, &issuer).await;
    set_groups(&issuer, &login, Value::Null).await;
    // Its next requests refresh it; the page's own data calls are refused, and leave the
    // telling to the next page.
    let ended = until(
        async || {
            role_of(&app, &client).await;
            sqlx::query_scalar::<_, String>("SELECT ended FROM user_sessions WHERE ended <> ''")
                .fetch_all(app.state.db.pool())
                .await
                .unwrap()
        },
        |ended| !ended.is_empty(),
    )
    .await;
    assert_eq!(ended, vec!["session_groups".to_string()]);
    assert_eq!(role_of(&app, &client).await, Value::Null, "signed out");
    let page = client.get(app.at("/machines")).send().await.unwrap();
    assert_eq!(page.url().query(), Some("next=%2Fmachines&error=session_groups"), "ended at {}", page.url());
    assert!(page.text().await.unwrap().contains("no longer says which groups you are in"));
    let again = client.get(app.at("/machines")).send().await.unwrap();
    assert_eq!(again.url().query(), Some("next=%2Fmachines"), "told once");
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT summary FROM audit_log WHERE action = 'session.revoked_by_idp'")
            .fetch_all(app.state.db.pool())
            .await
            .unwrap();
    assert!(reasons.len() == 1 && reasons[0].contains("named none of the person's groups"), "{reasons:?}");
}

/// An IdP that gives no refresh token: the session keeps the access token (sealed) and asks
/// userinfo with it at each refresh interval, for the groups and whether the person may go on.
async fn a_session_without_a_refresh_token_is_rechecked_through_userinfo(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso_as(backend, &issuer, None, "groups", &["authorization_code"]).await;
    let (login, client) = signed_in_viewer(&app, &issuer).await;
    let (session, sealed, kind): (String, String, String) =
        sqlx::query_as("SELECT session_id, refresh_token, idp_token_kind FROM user_sessions WHERE refresh_token <> ''")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    assert_eq!(kind, "access", "no refresh token came");
    let place = pangea::access::sessions::idp_token_place(&session, pangea::access::sso::IdpTokenKind::Access);
    assert!(app.state.sealer.open(&sealed, &place).is_ok(), "sealed, bound to its session");
    set_groups(&issuer, &login, json!(["pangea-admins"])).await;
    let role = until(|| role_of(&app, &client), |r| *r == "admin").await;
    assert_eq!(role, "admin", "userinfo's groups replace the old ones");
    let disabled = reqwest::Client::new().post(format!("{issuer}/test/disable/{login}")).send().await.unwrap();
    assert_eq!(disabled.status(), 204);
    let role = until(|| role_of(&app, &client), |r| r.is_null()).await;
    assert!(role.is_null(), "the IdP refused the access token: the session ended");
    let revoked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'session.revoked_by_idp'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(revoked, 1);
}

async fn a_refresh_token_this_server_cannot_open_ends_the_session(backend: Backend) {
    let app = spawn_with_sso(backend, &issuer(), None).await;
    let (olga, _) = sso_sign_in(&app, "olga", "olga-password").await;
    app.state.access.bind(&Principal::cli(), "group", "pangea-operators", ConsoleRole::Operator).await.unwrap();
    // No refresh of the sign-in's own may still be running, or it would store a valid token.
    let idle = until(async || app.state.refreshing.lock().unwrap().is_empty(), |idle| *idle).await;
    assert!(idle);
    // Sealed with this server's key, but for another session: bound to its row, it does not
    // open here (a value sealed under another key is refused the same way; see secrets.rs).
    let place = pangea::access::sessions::refresh_token_place("another-session");
    let foreign = app.state.sealer.seal(&SecretString::from("a-refresh-token"), &place);
    sqlx::query("UPDATE user_sessions SET refresh_token = $1, refreshed_at = ''")
        .bind(&foreign)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(olga.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 401, "fails closed");
}

/// Runs the whole browser journey with a cookie-keeping client; returns it and where it ended.
async fn sso_sign_in(app: &TestApp, user: &str, password: &str) -> (reqwest::Client, reqwest::Url) {
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let form_page = client.get(app.at("/auth/oidc/start?next=/machines")).send().await.unwrap();
    assert_eq!(form_page.status(), 200, "the IdP's login form");
    assert!(form_page.url().path().starts_with("/interaction/"), "expected the IdP's form, got {}", form_page.url());
    let action = form_page.url().path().to_string() + "/login";
    let idp = form_page.url().origin().ascii_serialization();
    let done =
        client.post(format!("{idp}{action}")).form(&[("login", user), ("password", password)]).send().await.unwrap();
    let url = done.url().clone();
    (client, url)
}

async fn a_person_signs_in_through_the_idp_with_the_role_of_their_group(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let (alice, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.path(), "/machines", "ended at {ended}");
    assert_eq!(me(&app, &alice).await, json!({"name": "alice@example.com", "role": "admin", "method": "oidc"}));
    let login = pangea::audit::latest(&app.state.db, 5)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.action == "session.login")
        .unwrap();
    assert_eq!(
        (login.actor.as_str(), login.auth_method.as_str(), login.outcome.as_str()),
        ("alice@example.com", "oidc", "success")
    );
}

async fn a_group_without_a_binding_gets_nothing_until_an_admin_binds_it(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let (victor, _) = sso_sign_in(&app, "victor", "victor-password").await;
    assert_eq!(victor.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 403);
    app.state.access.bind(&Principal::cli(), "group", "pangea-viewers", ConsoleRole::Viewer).await.unwrap();
    assert_eq!(victor.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
    let res = victor.post(app.at("/api/v1/machines")).json(&json!({"mac": "52:54:00:00:00:01"})).send().await.unwrap();
    assert_eq!(res.status(), 403);
}

async fn a_replayed_or_forged_callback_is_refused(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Walk the redirects by hand, to hold on to the callback URL.
    let mut url: reqwest::Url = app.at("/auth/oidc/start?next=/machines").parse().unwrap();
    let mut callback = None;
    for _ in 0..10 {
        let res = client.get(url.clone()).send().await.unwrap();
        if res.status() == 200 {
            let action = format!("{}{}/login", res.url().origin().ascii_serialization(), res.url().path());
            let res =
                client.post(action).form(&[("login", "olga"), ("password", "olga-password")]).send().await.unwrap();
            url = res.url().join(res.headers()["location"].to_str().unwrap()).unwrap();
            continue;
        }
        let next = res.url().join(res.headers()["location"].to_str().unwrap()).unwrap();
        if next.path() == "/auth/oidc/callback" {
            callback = Some(next);
            break;
        }
        url = next;
    }
    let callback = callback.expect("the IdP sent the browser back");
    let before = session_cookie(&jar, &app);
    let first = client.get(callback.clone()).send().await.unwrap();
    assert_eq!(first.headers()["location"], "/machines");
    let after = session_cookie(&jar, &app);
    assert!(before.is_none(), "starting a sign-in makes no session: {before:?}");
    assert!(after.is_some(), "signing in does");
    let replay = client.get(callback.clone()).send().await.unwrap();
    assert_eq!(replay.headers()["location"], "/login?error=sso_state", "a used state is gone");
    let mut forged = callback.clone();
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    forged.set_query(Some(&format!("code={code}&state=forged")));
    let res = app.anonymous().get(forged).send().await.unwrap();
    assert_eq!(res.headers()["location"], "/login?error=sso_state", "no sign-in was started in that browser");
    // A used code with a fresh, valid state: the IdP refuses the code.
    let start = client.get(app.at("/auth/oidc/start")).send().await.unwrap();
    let fresh: reqwest::Url = start.headers()["location"].to_str().unwrap().parse().unwrap();
    let state = fresh.query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let replay = client.get(app.at(&format!("/auth/oidc/callback?code={code}&state={state}"))).send().await.unwrap();
    assert_eq!(replay.headers()["location"], "/login?error=sso_exchange", "a code works once");
    let failures = pangea::audit::latest(&app.state.db, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "session.login" && r.outcome == "denied")
        .count();
    assert!(failures >= 2);
}

/// The Pangea session cookie a cookie jar holds for the app, if any.
fn session_cookie(jar: &reqwest::cookie::Jar, app: &TestApp) -> Option<String> {
    use reqwest::cookie::CookieStore;
    let cookies = jar.cookies(&app.url.parse().unwrap())?;
    cookies.to_str().ok()?.split("; ").find(|c| c.starts_with("pangea_session=")).map(str::to_string)
}

async fn cancelling_at_the_idp_says_so(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let form_page = client.get(app.at("/auth/oidc/start")).send().await.unwrap();
    let abort = format!("{}{}/abort", form_page.url().origin().ascii_serialization(), form_page.url().path());
    let ended = client.post(abort).send().await.unwrap();
    assert_eq!(ended.url().path(), "/login");
    assert_eq!(ended.url().query(), Some("error=sso_denied"));
    assert!(ended.text().await.unwrap().contains("refused the sign-in"));
}

async fn a_wrong_client_secret_is_reported_and_pangea_keeps_working(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, Some("not-the-secret")).await;
    let (_, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.query(), Some("error=sso_exchange"));
    assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
}

async fn an_unreachable_idp_takes_down_only_single_sign_on(backend: Backend) {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let app = spawn_with_sso(backend, &dead, None).await;
    let res = app.anonymous().get(app.at("/auth/oidc/start")).send().await.unwrap();
    assert_eq!(res.headers()["location"], "/login?error=sso_unreachable");
    let page = app.anonymous().get(app.at("/login?error=sso_unreachable")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("cannot reach the identity provider"), "{page}");
    assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
}

async fn a_code_issued_to_another_client_is_refused(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    // Another client registered for the same callback URL gets a code for itself…
    let callback = app.at("/auth/oidc/callback");
    let (other_id, _) = register_client(&issuer, &callback).await;
    let client =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // …while the browser has a sign-in of Pangea's own in progress, whose state it reuses.
    let start = client.get(app.at("/auth/oidc/start")).send().await.unwrap();
    let ours: reqwest::Url = start.headers()["location"].to_str().unwrap().parse().unwrap();
    let state = ours.query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let mut theirs = ours.clone();
    let pairs: Vec<(String, String)> = ours
        .query_pairs()
        .map(|(k, v)| (k.to_string(), if k == "client_id" { other_id.clone() } else { v.to_string() }))
        .collect();
    theirs.query_pairs_mut().clear().extend_pairs(pairs);
    let stop_at_callback = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.url().path() == "/auth/oidc/callback" { attempt.stop() } else { attempt.follow() }
    });
    let idp = reqwest::Client::builder().cookie_store(true).redirect(stop_at_callback).build().unwrap();
    let form_page = idp.get(theirs).send().await.unwrap();
    let action = format!("{}{}/login", form_page.url().origin().ascii_serialization(), form_page.url().path());
    let idp_no_follow =
        idp.post(action).form(&[("login", "alice"), ("password", "alice-password")]).send().await.unwrap();
    let landed: reqwest::Url = idp_no_follow.headers()["location"].to_str().unwrap().parse().unwrap();
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .expect("a code for the other client");
    let res = client.get(app.at(&format!("/auth/oidc/callback?code={code}&state={state}"))).send().await.unwrap();
    assert_eq!(res.headers()["location"], "/login?error=sso_exchange");
}

async fn refresh_tokens_keep_sessions_alive_and_end_them_when_the_idp_disables_the_person(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    // A user of this test only, so disabling them touches no other test.
    let (login, password) = test_user(&issuer, json!({"groups": ["pangea-operators"]})).await;
    let (dora, _) = sso_sign_in(&app, &login, &password).await;
    app.state.access.bind(&Principal::cli(), "group", "pangea-operators", ConsoleRole::Operator).await.unwrap();
    for _ in 0..3 {
        assert_eq!(dora.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200, "each request refreshes");
    }
    let (session, stored): (String, String) =
        sqlx::query_as("SELECT session_id, refresh_token FROM user_sessions WHERE refresh_token <> ''")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    let place = pangea::access::sessions::refresh_token_place(&session);
    assert!(app.state.sealer.open(&stored, &place).is_ok(), "kept, sealed, and bound to its session");
    let disabled = reqwest::Client::new().post(format!("{issuer}/test/disable/{login}")).send().await.unwrap();
    assert_eq!(disabled.status(), 204);
    // The refresh runs beside the requests, never in their way: the session ends once it has
    // heard back from the IdP.
    let status =
        until(|| async { dora.get(app.at("/api/v1/machines")).send().await.unwrap().status() }, |s| *s == 401).await;
    assert_eq!(status, 401);
    let records = pangea::audit::latest(&app.state.db, 10).await.unwrap();
    let email = format!("{login}@example.com");
    assert!(records.iter().any(|r| r.action == "session.revoked_by_idp" && r.actor == email));
}

async fn an_idp_whose_clock_is_hours_off_is_refused_with_a_clear_message(backend: Backend) {
    // .ci/test runs a second test IdP under faketime, two hours ahead: its ID tokens are issued
    // "in the future" by Pangea's clock, beyond the 60 s tolerance.
    let skewed = std::env::var("PANGEA_TEST_SKEWED_OIDC_ISSUER")
        .expect("PANGEA_TEST_SKEWED_OIDC_ISSUER is not set: run the tests with .ci/test");
    let app = spawn_with_sso(backend, &skewed, None).await;
    let (_, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.query(), Some("error=sso_token"));
    let page = app.anonymous().get(ended).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("its clock may be off"), "{page}");
    let failure = pangea::audit::latest(&app.state.db, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.action == "session.login")
        .unwrap();
    assert!(failure.summary.contains("in the future"), "{}", failure.summary);
}

async fn an_id_token_for_another_audience_is_refused(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let client_id = app.state.oidc.as_ref().unwrap().client_id().to_string();
    // The test IdP now signs this client's ID tokens, with its real key, for another audience.
    let res = reqwest::Client::new().post(format!("{issuer}/test/wrong-audience/{client_id}")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (_, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.query(), Some("error=sso_token"));
    let failure = pangea::audit::latest(&app.state.db, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.action == "session.login")
        .unwrap();
    assert!(failure.summary.contains("some-other-client"), "{}", failure.summary);
    assert_eq!(failure.outcome, "denied");
}

/// After a client-secret rotation the IdP answers `invalid_client`: that says nothing about the
/// person, so their session goes on (only `invalid_grant` ends one).
async fn an_idp_that_refuses_pangea_itself_signs_nobody_out(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let (olga, _) = sso_sign_in(&app, "olga", "olga-password").await;
    app.state.access.bind(&Principal::cli(), "group", "pangea-operators", ConsoleRole::Operator).await.unwrap();
    let client_id = app.state.oidc.as_ref().unwrap().client_id().to_string();
    let res = reqwest::Client::new().post(format!("{issuer}/test/reject-client/{client_id}")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let refreshed_at = || refreshed_at(&app);
    let before = refreshed_at().await;
    // Requests go on; each may start a refresh, which the IdP now refuses.
    let attempted = until(
        async || {
            let status = olga.get(app.at("/api/v1/machines")).send().await.unwrap().status();
            assert_eq!(status, 200, "the session must go on");
            refreshed_at().await
        },
        |at| *at != before,
    )
    .await;
    assert_ne!(attempted, before, "a refresh was tried");
    let idle = until(async || app.state.refreshing.lock().unwrap().is_empty(), |idle| *idle).await;
    assert!(idle);
    assert_eq!(olga.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200, "still signed in");
    let records = pangea::audit::latest(&app.state.db, 20).await.unwrap();
    assert!(!records.iter().any(|r| r.action == "session.revoked_by_idp"));
}

async fn a_missing_groups_claim_is_named_with_the_claims_that_arrived(backend: Backend) {
    // "team" is in neither the ID token nor userinfo: olga signs in, with no role, and is told why.
    let app = spawn_with_sso_claim(backend, "team").await;
    let (olga, ended) = sso_sign_in(&app, "olga", "olga-password").await;
    assert_eq!(ended.path(), "/machines", "ended at {ended}");
    let res = olga
        .post(app.at("/api/gui/list_machines"))
        .header("origin", app.url.as_str())
        .json(&json!({"query": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let message = res.json::<Value>().await.unwrap()["message"].as_str().unwrap().to_string();
    assert!(message.contains("\"team\"") && message.contains("email") && message.contains("groups"), "{message}");
}

/// (The test IdP's key set is one for all its clients: once one test has rotated, a console
/// started later sees both keys at its first discovery. The first of these tests to run in an
/// IdP's life is the one that proves the re-fetch; it fails with `sso_token` without it.)
async fn a_signing_key_rotated_at_the_idp_is_fetched_when_first_seen(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    // The first sign-in discovers the provider and caches its keys.
    let (_, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.path(), "/machines");
    let client_id = app.state.oidc.as_ref().unwrap().client_id().to_string();
    let res = reqwest::Client::new().post(format!("{issuer}/test/rotate-keys/{client_id}")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    // Now the ID token names a key the cached set lacks: Pangea fetches the keys again.
    let (alice, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.path(), "/machines", "ended at {ended}");
    assert_eq!(role_of(&app, &alice).await, "admin");
}

async fn kubernetes_own_groups_from_the_idp_are_dropped_and_the_person_is_told(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let groups = json!({"groups": ["pangea-operators", "system:masters", "system:nodes"]});
    let (login, password) = test_user(&issuer, groups).await;
    let (client, _) = sso_sign_in(&app, &login, &password).await;
    // The person's own page (the account menu) says which groups were dropped, and why.
    let me = me(&app, &client).await;
    let note = me["note"].as_str().unwrap_or_default();
    assert!(note.contains("system:masters, system:nodes") && note.contains("Kubernetes' own"), "{me}");
    // So does the sign-in's audit record; the groups Pangea keeps have none of them.
    let audit = app.get_json("/api/v1/audit?action=session.login&outcome=success").await;
    let summary: Value = serde_json::from_str(audit["items"][0]["summary"].as_str().unwrap()).unwrap();
    assert_eq!(summary["groups"], json!(["pangea-operators"]));
    assert!(summary["groups_note"].as_str().unwrap().contains("system:masters"), "{summary}");
}

/// Anyone may start a sign-in: it is carried in a sealed, short-lived cookie of the browser,
/// and the database is not written until the IdP sends the browser back.
async fn an_anonymous_start_writes_nothing_to_the_database(backend: Backend) {
    let issuer = issuer();
    let app = spawn_with_sso(backend, &issuer, None).await;
    let pool = app.state.db.pool();
    let sessions_sql = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM tower_sessions",
        Backend::Postgres => "SELECT COUNT(*) FROM tower_sessions.session",
    };
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap() };
    let before = (count(sessions_sql).await, count("SELECT COUNT(*) FROM audit_log").await);
    for _ in 0..20 {
        let res = app.anonymous().get(app.at("/auth/oidc/start?next=/machines")).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(res.headers()["location"].to_str().unwrap().starts_with(&issuer));
        let cookie = res.headers()["set-cookie"].to_str().unwrap();
        assert!(cookie.starts_with("pangea_sso=pk1."), "sealed: {cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Max-Age=600"));
        assert!(!cookie.contains("pangea_session"), "{cookie}");
    }
    assert_eq!((count(sessions_sql).await, count("SELECT COUNT(*) FROM audit_log").await), before);
    // And the whole journey still signs the person in.
    let (client, ended) = sso_sign_in(&app, "alice", "alice-password").await;
    assert_eq!(ended.path(), "/machines");
    assert_eq!(client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
}
