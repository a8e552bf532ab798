//! Black-box tests of the hub process over HTTPS.

mod common;

use common::{add_user, login, run_cli, spawn_hub_in};
use serde_json::Value;

const PW: &str = "long enough password";

#[tokio::test]
async fn health_readiness_and_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = spawn_hub_in(dir.path(), "hub", &[], &[]);
    assert!(
        hub.stdout.iter().any(|l| l.contains("ca.pem")),
        "start-up says where the development CA is: {:?}",
        hub.stdout
    );
    let client = hub.client();
    let health = client
        .get(hub.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let body: Value = health.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    let ready: Value = client
        .get(hub.url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"], "sqlite");
    let metrics = client
        .get(hub.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("etahoiva_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/readyz\""), "{metrics}");
}

#[tokio::test]
async fn metrics_token_guards_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = spawn_hub_in(
        dir.path(),
        "hub",
        &[],
        &[("ETAHOIVA_METRICS_TOKEN", "scrape-secret")],
    );
    let client = hub.client();
    let refused = client
        .get(hub.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(refused.status(), 401);
    let allowed = client
        .get(hub.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .expect("metrics");
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn login_tokens_cookies_and_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "aino", "admin", PW);
    add_user(dir.path(), "anna", "nurse", PW);
    let hub = spawn_hub_in(dir.path(), "hub", &[], &[]);
    let client = hub.client();

    let response = client
        .post(hub.url("/api/v1/login"))
        .json(&serde_json::json!({"username": "aino", "password": PW}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("session cookie")
        .to_string();
    for attribute in ["etahoiva_session=", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(
            cookie.contains(attribute),
            "cookie lacks {attribute}: {cookie}"
        );
    }
    let body: Value = response.json().await.expect("json");
    let admin_token = body["token"].as_str().expect("token").to_string();
    assert_eq!(body["user"]["roles"], serde_json::json!(["admin"]));
    assert!(body["user"].get("password_hash").is_none());

    let wrong = client
        .post(hub.url("/api/v1/login"))
        .json(&serde_json::json!({"username": "aino", "password": "not the password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(wrong.status(), 401);
    let err: Value = wrong.json().await.expect("json");
    assert_eq!(err["error"]["code"], "invalid_credentials");
    let unknown = client
        .post(hub.url("/api/v1/login"))
        .json(&serde_json::json!({"username": "nobody", "password": PW}))
        .send()
        .await
        .expect("login");
    assert_eq!(unknown.status(), 401);

    let fresh = common::client_for(dir.path());
    let none = fresh
        .get(hub.url("/api/v1/users"))
        .send()
        .await
        .expect("users");
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let garbage = fresh
        .get(hub.url("/api/v1/users"))
        .bearer_auth("forged-token")
        .send()
        .await
        .expect("users");
    assert_eq!(garbage.status(), 401);

    let nurse_token = login(&fresh, &hub, "anna", PW).await;
    let forbidden = fresh
        .get(hub.url("/api/v1/users"))
        .bearer_auth(&nurse_token)
        .send()
        .await
        .expect("users");
    assert_eq!(forbidden.status(), 403);
    let err: Value = forbidden.json().await.expect("json");
    assert_eq!(err["error"]["code"], "forbidden");

    let users: Value = fresh
        .get(hub.url("/api/v1/users"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .expect("users")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = users
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["aino", "anna"]);

    // The cookie alone authenticates the console client.
    let me: Value = client
        .get(hub.url("/api/v1/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "aino");

    // The denied request is in the audit trail.
    let audit: Value = fresh
        .get(hub.url("/api/v1/audit"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert!(
        audit
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["action"] == "access.denied"),
        "{audit}"
    );

    let out = fresh
        .post(hub.url("/api/v1/logout"))
        .bearer_auth(&nurse_token)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 204);
    let after = fresh
        .get(hub.url("/api/v1/me"))
        .bearer_auth(&nurse_token)
        .send()
        .await
        .expect("me");
    assert_eq!(after.status(), 401, "a signed-out token stops working");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "anna", "nurse", PW);
    let hub = spawn_hub_in(
        dir.path(),
        "hub",
        &[],
        &[("ETAHOIVA_SESSION_TTL_SECS", "1")],
    );
    let client = hub.client();
    let token = login(&client, &hub, "anna", PW).await;
    let ok = client
        .get(hub.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(ok.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let expired = client
        .get(hub.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(expired.status(), 401);
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "anna", "nurse", PW);
    let hub = spawn_hub_in(
        dir.path(),
        "hub",
        &[],
        &[("ETAHOIVA_LOGIN_MAX_FAILURES", "3")],
    );
    let client = hub.client();
    for _ in 0..3 {
        let r = client
            .post(hub.url("/api/v1/login"))
            .json(&serde_json::json!({"username": "anna", "password": "wrong password!"}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 401);
    }
    // Locked now, even with the right password.
    let locked = client
        .post(hub.url("/api/v1/login"))
        .json(&serde_json::json!({"username": "anna", "password": PW}))
        .send()
        .await
        .expect("login");
    assert_eq!(locked.status(), 429);
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "retry after {retry}");
    let err: Value = locked.json().await.expect("json");
    assert_eq!(err["error"]["code"], "too_many_requests");
    // Another user from elsewhere is not affected by anna's lockout.
    add_user(dir.path(), "mikko", "nurse", PW);
    let other = client
        .post(hub.url("/api/v1/login"))
        .json(&serde_json::json!({"username": "mikko", "password": PW}))
        .send()
        .await
        .expect("login");
    assert_eq!(other.status(), 200);
}

/// Resolves a `$ref` like `#/components/schemas/User`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    path.split('/').try_fold(doc, |node, key| node.get(key))
}

fn collect_refs<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r);
                    }
                }
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_is_valid_and_every_route_but_login_needs_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = spawn_hub_in(dir.path(), "hub", &[], &[]);
    let client = hub.client();
    let response = client
        .get(hub.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().expect("paths");
    for expected in [
        "/api/v1/login",
        "/api/v1/logout",
        "/api/v1/users",
        "/api/v1/me",
        "/api/v1/clients",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the document"
        );
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(resolve(&doc, r).is_some(), "dangling $ref {r}");
    }
    let mut operation_ids = std::collections::HashSet::new();
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} lists no responses"
            );
            if let Some(id) = op["operationId"].as_str() {
                assert!(
                    operation_ids.insert(id.to_string()),
                    "duplicate operationId {id}"
                );
            }
            if path == "/api/v1/login" {
                continue;
            }
            assert!(
                op["security"].is_array(),
                "{method} {path} does not declare its security"
            );
            let url = hub.url(&path.replace('{', "x").replace('}', ""));
            let request = match method.as_str() {
                "get" => client.get(&url),
                "post" => client.post(&url).json(&serde_json::json!({})),
                "put" => client.put(&url).json(&serde_json::json!({})),
                "patch" => client.patch(&url).json(&serde_json::json!({})),
                "delete" => client.delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let status = request.send().await.expect("request").status();
            assert_eq!(status, 401, "{method} {path} without a token");
            checked += 1;
        }
    }
    assert!(checked >= 8, "checked only {checked} operations");
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "aino", "admin", PW);
    let hub = spawn_hub_in(
        dir.path(),
        "hub",
        &[],
        &[("ETAHOIVA_MAX_BODY_BYTES", "4096")],
    );
    let client = hub.client();
    let token = login(&client, &hub, "aino", PW).await;
    let malformed = client
        .post(hub.url("/api/v1/login"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(malformed.status(), 400);
    let err: Value = malformed.json().await.expect("json error body");
    assert!(err["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let wrong_type = client
        .post(hub.url("/api/v1/login"))
        .body("username=a")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_type.status(), 415);
    let huge = client
        .post(hub.url("/api/v1/users"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{}\"}}", "x".repeat(10_000)))
        .send()
        .await
        .expect("send");
    assert_eq!(huge.status(), 413);
    let err: Value = huge.json().await.expect("json error body");
    assert_eq!(err["error"]["code"], "payload_too_large");
    let bad_role = client
        .post(hub.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"username": "x1", "roles": ["janitor"], "password": PW}))
        .send()
        .await
        .expect("send");
    assert_eq!(bad_role.status(), 422);
    let weak = client
        .post(hub.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"username": "x1", "roles": ["nurse"], "password": "short"}))
        .send()
        .await
        .expect("send");
    assert_eq!(weak.status(), 400);
    let created = client
        .post(hub.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"username": "x1", "roles": ["nurse", "patrol"], "password": PW, "language": "sv-FI"}))
        .send()
        .await
        .expect("send");
    assert_eq!(created.status(), 201);
    let user: Value = created.json().await.expect("json");
    assert_eq!(user["language"], "sv");
    let duplicate = client
        .post(hub.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"username": "x1", "roles": ["nurse"], "password": PW}))
        .send()
        .await
        .expect("send");
    assert_eq!(duplicate.status(), 409);
    let missing = client
        .get(hub.url("/api/v1/nothing-here"))
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status(), 404);
    let err: Value = missing.json().await.expect("json error body");
    assert_eq!(err["error"]["code"], "not_found");
    // The hub is still healthy after all of it.
    assert_eq!(
        client
            .get(hub.url("/healthz"))
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
}

#[tokio::test]
async fn restart_keeps_data_and_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "aino", "admin", PW);
    let hub = spawn_hub_in(dir.path(), "hub", &[], &[]);
    let client = hub.client();
    let token = login(&client, &hub, "aino", PW).await;
    let created = client
        .post(hub.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"username": "liisa", "roles": ["patrol"], "password": PW}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let ca_before = std::fs::read(dir.path().join("tls/ca.pem")).expect("ca");
    hub.stop();
    let hub = spawn_hub_in(dir.path(), "hub", &[], &[]);
    assert_eq!(
        std::fs::read(dir.path().join("tls/ca.pem")).expect("ca"),
        ca_before
    );
    let client = hub.client();
    let again = login(&client, &hub, "liisa", PW).await;
    let me: Value = client
        .get(hub.url("/api/v1/me"))
        .bearer_auth(&again)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["roles"], serde_json::json!(["patrol"]));
    // Sessions survive the restart too.
    let old = client
        .get(hub.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(old.status(), 200);
}

#[tokio::test]
async fn configured_certificates_are_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Let one hub make a CA and server certificate, then hand those to a hub in another directory.
    let first = spawn_hub_in(dir.path(), "hub", &[], &[]);
    first.stop();
    let other = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("tls/server.pem");
    let key = dir.path().join("tls/server-key.pem");
    let hub = spawn_hub_in(
        other.path(),
        "hub",
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(
        !other.path().join("tls/ca.pem").exists() && !other.path().join("tls/server.pem").exists(),
        "no development CA or server certificate when certificates are configured"
    );
    assert!(
        other.path().join("tls/device-ca.pem").exists(),
        "the device CA for terminal certificates is the hub's own"
    );
    let client = common::client_for(dir.path());
    assert_eq!(
        client
            .get(hub.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
}

#[test]
fn config_precedence_is_defaults_file_env_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("etahoiva.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1111\"\nlog_filter = \"debug\"\nsession_ttl_secs = 100\nlogin_max_failures = 7\n",
    )
    .expect("write");
    let f = file.to_str().expect("utf-8");
    let (ok, out, err) = run_cli(
        &[
            "config",
            "show",
            "--config",
            f,
            "--listen",
            "127.0.0.1:3333",
        ],
        None,
        &[
            ("ETAHOIVA_LISTEN", "127.0.0.1:2222"),
            ("ETAHOIVA_SESSION_TTL_SECS", "200"),
            ("DATABASE_URL", "postgres://hub:topsecret@db/etahoiva"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("listen = \"127.0.0.1:3333\""),
        "flag wins: {out}"
    );
    assert!(
        out.contains("session_ttl_secs = 200"),
        "env beats file: {out}"
    );
    assert!(
        out.contains("log_filter = \"debug\""),
        "file beats default: {out}"
    );
    assert!(out.contains("login_max_failures = 7"), "{out}");
    assert!(
        out.contains("max_body_bytes = 1048576"),
        "default stays: {out}"
    );
    assert!(!out.contains("topsecret"), "password redacted: {out}");
    assert!(
        out.contains("postgres://hub:<redacted>@db/etahoiva"),
        "{out}"
    );

    std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").expect("write");
    let (ok, _, err) = run_cli(&["config", "show", "--config", f], None, &[]);
    assert!(!ok);
    assert!(err.contains("lisen"), "an unknown key is named: {err}");
    let (ok, _, err) = run_cli(
        &["config", "show", "--config", "/nonexistent/x.toml"],
        None,
        &[],
    );
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    let (ok, example, _) = run_cli(&["config", "example"], None, &[]);
    assert!(ok && example.contains("listen"));
}

#[test]
fn users_cli_works_on_a_fresh_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("fresh");
    let d = data.to_str().expect("utf-8");
    let (ok, out, err) = run_cli(
        &[
            "users",
            "add",
            "--data-dir",
            d,
            "--username",
            "eeva",
            "--role",
            "nurse",
            "--role",
            "admin",
        ],
        None,
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("roles admin,nurse"), "{out}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is printed");
    assert!(password.len() >= 12);
    let (ok, out, _) = run_cli(&["users", "list", "--data-dir", d], None, &[]);
    assert!(ok);
    assert!(out.contains("eeva") && out.contains("admin,nurse"), "{out}");
    let (ok, _, err) = run_cli(
        &[
            "users",
            "add",
            "--data-dir",
            d,
            "--username",
            "eeva",
            "--role",
            "nurse",
            "--password-stdin",
        ],
        Some("another long password\n"),
        &[],
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = run_cli(
        &[
            "users",
            "add",
            "--data-dir",
            d,
            "--username",
            "x",
            "--role",
            "janitor",
        ],
        None,
        &[],
    );
    assert!(!ok);
    assert!(err.contains("janitor"), "{err}");
    let (ok, _, err) = run_cli(
        &[
            "users",
            "add",
            "--data-dir",
            d,
            "--username",
            "short",
            "--role",
            "nurse",
            "--password-stdin",
        ],
        Some("tiny\n"),
        &[],
    );
    assert!(!ok);
    assert!(err.contains("at least 10"), "{err}");
}

#[tokio::test]
async fn hub_runs_on_postgres() {
    let Some(admin) = common::postgres_admin_url("hub_runs_on_postgres") else {
        return;
    };
    let db = common::TempPgDatabase::create(&admin).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let (ok, _, err) = run_cli(
        &[
            "users",
            "add",
            "--data-dir",
            d,
            "--username",
            "aino",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PW}\n")),
        &[("DATABASE_URL", &db.url)],
    );
    assert!(ok, "{err}");
    assert!(
        !dir.path().join("etahoiva.db").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
    {
        let hub = spawn_hub_in(dir.path(), "hub", &[], &[("DATABASE_URL", &db.url)]);
        let client = hub.client();
        let ready: Value = client
            .get(hub.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        assert_eq!(ready["store"], "postgres");
        let token = login(&client, &hub, "aino", PW).await;
        let users = client
            .get(hub.url("/api/v1/users"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("users");
        assert_eq!(users.status(), 200);
    }
    db.drop_db().await;
}
