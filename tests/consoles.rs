//! The web shell: sign-in page, console frames per role, languages, and the demo.

mod common;

use common::{add_user, spawn_hub_in};

const PW: &str = "long enough password";

#[tokio::test]
async fn sign_in_page_follows_the_browser_language() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = spawn_hub_in(dir.path(), "hub", &[], &[]);
    let client = hub.client();
    for (accept, lang, title) in [
        ("sv-FI,sv;q=0.9", "sv", "Logga in"),
        ("en-GB,en;q=0.8", "en", "Sign in"),
        ("fi", "fi", "Kirjaudu sisään"),
        ("de-DE", "fi", "Kirjaudu sisään"),
    ] {
        let page = client
            .get(hub.url("/login"))
            .header("accept-language", accept)
            .send()
            .await
            .expect("login page");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        assert!(
            html.contains(&format!("<html lang=\"{lang}\">")),
            "{accept}: {html}"
        );
        assert!(html.contains(title), "{accept} shows {title}");
        assert!(
            html.contains("<label for=\"username\">"),
            "inputs are labelled"
        );
    }
    let css = client
        .get(hub.url("/static/app.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/css"));
    let missing = client
        .get(hub.url("/no/such/page"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn form_sign_in_leads_to_the_consoles_of_the_users_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_user(dir.path(), "anna", "nurse", PW);
    let hub = spawn_hub_in(dir.path(), "hub", &[], &[]);
    let client = hub.client();

    let unsigned = client
        .get(hub.url("/console/nurse"))
        .send()
        .await
        .expect("console");
    assert_eq!(unsigned.status(), 303);
    assert_eq!(unsigned.headers()["location"], "/login?next=/console/nurse");

    let failed = client
        .post(hub.url("/login"))
        .header("accept-language", "sv")
        .form(&[
            ("username", "anna"),
            ("password", "wrong password"),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("form");
    assert_eq!(failed.status(), 401);
    let html = failed.text().await.expect("html");
    assert!(html.contains("Fel användarnamn eller lösenord."), "{html}");
    assert!(html.contains("role=\"alert\""));

    let signed = client
        .post(hub.url("/login"))
        .form(&[
            ("username", "anna"),
            ("password", PW),
            ("next", "https://elsewhere.example/"),
        ])
        .send()
        .await
        .expect("form");
    assert_eq!(signed.status(), 303);
    assert_eq!(
        signed.headers()["location"],
        "/",
        "no redirect off the site"
    );

    let home = client.get(hub.url("/")).send().await.expect("home");
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()["location"], "/console/nurse");

    let console = client
        .get(hub.url("/console/nurse"))
        .header("accept-language", "en")
        .send()
        .await
        .expect("console");
    assert_eq!(console.status(), 200);
    let html = console.text().await.expect("html");
    assert!(html.contains("Nurse console"), "{html}");
    assert!(html.contains("data-console=\"nurse\""));

    let patrol = client
        .get(hub.url("/console/patrol"))
        .send()
        .await
        .expect("console");
    assert_eq!(
        patrol.status(),
        403,
        "a nurse does not get the patrol console"
    );

    // Choosing Swedish saves it on the account: the API shows it and the console follows it.
    let chosen = client
        .get(hub.url("/lang/sv?next=/console/nurse"))
        .send()
        .await
        .expect("lang");
    assert_eq!(chosen.status(), 303);
    let me: serde_json::Value = client
        .get(hub.url("/api/v1/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["language"], "sv");
    let html = client
        .get(hub.url("/console/nurse"))
        .header("accept-language", "en")
        .send()
        .await
        .expect("console")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("Sjukskötarens vy"),
        "the user's setting wins: {html}"
    );

    let out = client
        .post(hub.url("/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    let after = client
        .get(hub.url("/console/nurse"))
        .send()
        .await
        .expect("console");
    assert_eq!(after.status(), 303, "signed out");
}

#[tokio::test]
async fn demo_seeds_an_organisation_once_and_reuses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo-data");
    let hub = spawn_hub_in(&data, "demo", &[], &[]);
    let banner = hub.stdout.join("\n");
    assert!(banner.contains("Seeded the demo organisation"), "{banner}");
    assert!(
        banner.contains("/console/nurse") && banner.contains("etahoiva-demo"),
        "{banner}"
    );
    let client = hub.client();
    let token = common::login(&client, &hub, "anna", etahoiva::demo::DEMO_PASSWORD).await;
    let clients: serde_json::Value = client
        .get(hub.url("/api/v1/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("clients")
        .json()
        .await
        .expect("json");
    let clients = clients.as_array().expect("array");
    assert_eq!(clients.len(), 20);
    let swedish = clients.iter().filter(|c| c["language"] == "sv").count();
    assert!((2..20).contains(&swedish), "both languages present");
    assert!(clients
        .iter()
        .all(|c| c["address"].as_str().is_some_and(|a| a.len() > 10)));
    let admin = common::login(&client, &hub, "admin", etahoiva::demo::DEMO_PASSWORD).await;
    let teams: serde_json::Value = client
        .get(hub.url("/api/v1/teams"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("teams")
        .json()
        .await
        .expect("json");
    let teams = teams.as_array().expect("array");
    let patrols = teams.iter().filter(|t| t["kind"] == "patrol").count();
    let central: Vec<_> = teams.iter().filter(|t| t["kind"] == "central").collect();
    assert_eq!(patrols, 2, "a night patrol per area");
    assert!(
        teams
            .iter()
            .filter(|t| t["kind"] == "patrol")
            .all(|t| t["escalates_to"].is_string()),
        "each patrol has a next team"
    );
    assert!(
        clients.iter().all(|c| c["door_instructions"]
            .as_str()
            .is_some_and(|d| !d.is_empty())),
        "the patrol knows how to get in"
    );
    assert_eq!(central.len(), 1);
    assert_eq!(
        central[0]["members"].as_array().expect("members").len(),
        4,
        "four nurses"
    );
    // The simulated terminals come online over the real terminal link.
    let online = wait_for_online_devices(&client, &hub, &admin, 20).await;
    assert_eq!(online, 20, "twenty simulated terminals online");
    assert!(
        banner.contains("kiosk of the first terminal: http://127.0.0.1:"),
        "{banner}"
    );
    hub.stop();

    let again = spawn_hub_in(&data, "demo", &[], &[]);
    assert!(again
        .stdout
        .join("\n")
        .contains("Reusing the demo organisation"));
    let client = again.client();
    let admin = common::login(&client, &again, "admin", etahoiva::demo::DEMO_PASSWORD).await;
    let online = wait_for_online_devices(&client, &again, &admin, 20).await;
    assert_eq!(online, 20, "the same terminals come back");
    let token = common::login(&client, &again, "anna", etahoiva::demo::DEMO_PASSWORD).await;
    let clients: serde_json::Value = client
        .get(again.url("/api/v1/clients"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("clients")
        .json()
        .await
        .expect("json");
    assert_eq!(
        clients.as_array().expect("array").len(),
        20,
        "not seeded twice"
    );
}

/// Polls the device list until `want` terminals are online (at most 30 s);
/// returns how many were online, and checks no terminal was duplicated.
async fn wait_for_online_devices(
    client: &reqwest::Client,
    hub: &common::HubProcess,
    token: &str,
    want: usize,
) -> usize {
    let mut online = 0;
    for _ in 0..60 {
        let devices: serde_json::Value = client
            .get(hub.url("/api/v1/devices"))
            .bearer_auth(token)
            .send()
            .await
            .expect("devices")
            .json()
            .await
            .expect("json");
        let devices = devices.as_array().expect("array");
        assert_eq!(devices.len(), want, "one record per simulated terminal");
        online = devices.iter().filter(|d| d["online"] == true).count();
        if online == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    online
}
