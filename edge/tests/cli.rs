//! The `etahoiva-edge` command line without a hub: schema and validation.

use std::process::Command;

fn edge(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_etahoiva-edge"))
        .args(args)
        .output()
        .expect("edge runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn schema_is_the_committed_json_schema() {
    let (ok, out, _) = edge(&["schema"]);
    assert!(ok);
    let printed: serde_json::Value = serde_json::from_str(&out).expect("json");
    let committed: serde_json::Value = serde_json::from_str(include_str!(
        "../../firmware-config/schema/profile.schema.json"
    ))
    .expect("json");
    assert_eq!(printed, committed);
}

#[test]
fn validate_names_each_bad_field_and_its_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("profile.toml");
    std::fs::write(
        &profile,
        r#"
[device]
id = "living-room"
name = "Aino"

[hub]
url = "http://hub.example/link"
ca_cert = "hub-ca.pem"

[identity]
cert = "device.pem"
key = "device-key.pem"

[settings]
heartbeat_secs = 2
language = "fi"
"#,
    )
    .expect("write");
    let (ok, _, err) = edge(&["validate", profile.to_str().expect("utf-8")]);
    assert!(!ok);
    for needle in [
        "device.id",
        "hub.url",
        "use wss://HOST:PORT/link",
        "settings.heartbeat_secs",
        "use 5 to 3600 seconds",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }

    std::fs::write(&profile, "[device\n").expect("write");
    let (ok, _, err) = edge(&["validate", profile.to_str().expect("utf-8")]);
    assert!(!ok && err.contains("is not a valid profile"), "{err}");

    let (ok, _, err) = edge(&["validate", "/nonexistent/profile.toml"]);
    assert!(!ok && err.contains("cannot read"), "{err}");
}

#[test]
fn running_without_a_profile_explains_itself() {
    let (ok, _, err) = edge(&[]);
    assert!(!ok && err.contains("--profile"), "{err}");
}
