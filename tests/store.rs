//! The store suite: the same checks against embedded SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use etahoiva::store::{NewClient, NewUser, Role, Store, StoreError, TeamKind};

fn new_user(name: &str, roles: &[Role]) -> NewUser {
    NewUser {
        username: name.to_string(),
        display_name: format!("{name} display"),
        // Store tests do not need real hashes; the API tests cover hashing.
        password_hash: format!("hash-of-{name}"),
        roles: roles.to_vec(),
        language: Some("sv".into()),
    }
}

async fn users_and_roles(store: &Store) {
    let created = store
        .create_user(new_user("anna", &[Role::Nurse, Role::Admin, Role::Nurse]))
        .await
        .expect("create");
    assert_eq!(
        created.roles,
        vec![Role::Admin, Role::Nurse],
        "roles sorted and unique"
    );
    let again = store.create_user(new_user("anna", &[Role::Patrol])).await;
    assert!(
        matches!(again, Err(StoreError::Conflict("user"))),
        "{again:?}"
    );
    store
        .create_user(new_user("jari", &[Role::Patrol]))
        .await
        .expect("second");
    let users = store.list_users().await.expect("list");
    let names: Vec<_> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["anna", "jari"]);
    assert_eq!(users[1].roles, vec![Role::Patrol]);
    let fetched = store.get_user(&created.id).await.expect("get");
    assert_eq!(fetched.display_name, "anna display");
    assert_eq!(fetched.language.as_deref(), Some("sv"));
    assert!(matches!(
        store.get_user("nope").await,
        Err(StoreError::NotFound("user"))
    ));
    let (id, hash) = store
        .user_credentials("anna")
        .await
        .expect("creds")
        .expect("found");
    assert_eq!(
        (id.as_str(), hash.as_str()),
        (created.id.as_str(), "hash-of-anna")
    );
    assert!(store
        .user_credentials("ANNA-x")
        .await
        .expect("creds")
        .is_none());
    store
        .set_user_language(&created.id, Some("fi"))
        .await
        .expect("lang");
    assert_eq!(
        store
            .get_user(&created.id)
            .await
            .expect("get")
            .language
            .as_deref(),
        Some("fi")
    );
    assert!(matches!(
        store.set_user_language("missing", None).await,
        Err(StoreError::NotFound("user"))
    ));
}

async fn sessions_expire(store: &Store) {
    let user = store
        .create_user(new_user("mikko", &[Role::Nurse]))
        .await
        .expect("user");
    let now = etahoiva::store::now_ms();
    store
        .create_session("live", &user.id, now + 60_000)
        .await
        .expect("live");
    store
        .create_session("old", &user.id, now - 1)
        .await
        .expect("old");
    let live = store
        .session_user("live", now)
        .await
        .expect("lookup")
        .expect("valid");
    assert_eq!(live.user.username, "mikko");
    assert!(store
        .session_user("old", now)
        .await
        .expect("lookup")
        .is_none());
    assert!(store
        .session_user("unknown", now)
        .await
        .expect("lookup")
        .is_none());
    assert_eq!(store.purge_sessions(now).await.expect("purge"), 1);
    store.delete_session("live").await.expect("delete");
    assert!(store
        .session_user("live", now)
        .await
        .expect("lookup")
        .is_none());
}

async fn concurrent_writers(store: &Store) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .create_user(new_user(&format!("writer{i:02}"), &[Role::Nurse]))
                .await?;
            store
                .audit(Some("test"), "concurrent", Some(&format!("w{i}")), None)
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result
            .expect("task")
            .expect("every concurrent write succeeds");
    }
    let writers = store
        .list_users()
        .await
        .expect("list")
        .into_iter()
        .filter(|u| u.username.starts_with("writer"))
        .count();
    assert_eq!(writers, 40);
    let audited = store
        .audit_entries(1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "concurrent")
        .count();
    assert_eq!(audited, 40);
}

async fn organisation(store: &Store) {
    let nurse = store
        .create_user(new_user("sofia", &[Role::Nurse]))
        .await
        .expect("nurse");
    let area = store.create_area("Perhonjoki").await.expect("area");
    assert!(matches!(
        store.create_area("Perhonjoki").await,
        Err(StoreError::Conflict("area"))
    ));
    let team = store
        .create_team(
            "Yöpartio",
            TeamKind::Patrol,
            Some(&area.id),
            std::slice::from_ref(&nurse.id),
        )
        .await
        .expect("team");
    let teams = store.list_teams().await.expect("teams");
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0].id, team.id);
    assert_eq!(teams[0].kind, TeamKind::Patrol);
    assert_eq!(teams[0].members, vec![nurse.id.clone()]);
    let client = store
        .create_client(NewClient {
            name: "Ingrid Höglund".into(),
            language: "sv".into(),
            area_id: area.id.clone(),
            address: "Kyrkvägen 5, 68500 Kronoby".into(),
            named_nurse_id: Some(nurse.id.clone()),
            consent_auto_answer: true,
            time_zone: None,
        })
        .await
        .expect("client");
    let clients = store.list_clients().await.expect("clients");
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].id, client.id);
    assert_eq!(clients[0].time_zone, "Europe/Helsinki");
    assert!(clients[0].consent_auto_answer);
    // A client in an unknown area is refused by the schema.
    let orphan = store
        .create_client(NewClient {
            name: "X".into(),
            language: "fi".into(),
            area_id: "no-such-area".into(),
            address: "-".into(),
            named_nurse_id: None,
            consent_auto_answer: false,
            time_zone: None,
        })
        .await;
    assert!(orphan.is_err(), "foreign key must hold");
    store.set_meta("k", "1").await.expect("meta");
    store.set_meta("k", "2").await.expect("meta upsert");
    assert_eq!(
        store.get_meta("k").await.expect("meta").as_deref(),
        Some("2")
    );
}

/// Runs every shared check on a fresh store produced by `open`.
async fn suite<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let store = open().await;
    store.ping().await.expect("ping");
    users_and_roles(&store).await;
    sessions_expire(&store).await;
    concurrent_writers(&store).await;
    organisation(&store).await;
    store.close().await;
    // Reopening finds everything again (and migrations are idempotent).
    let reopened = open().await;
    assert!(reopened.list_users().await.expect("list").len() >= 43);
    reopened.close().await;
}

#[tokio::test]
async fn sqlite_store_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    suite(|| {
        let path = path.clone();
        async move { Store::open(None, &path).await.expect("open sqlite") }
    })
    .await;
}

#[tokio::test]
async fn postgres_store_suite() {
    let Some(admin) = common::postgres_admin_url("postgres_store_suite") else {
        return;
    };
    let db = common::TempPgDatabase::create(&admin).await;
    let url = db.url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    suite(|| {
        let url = url.clone();
        let path = path.clone();
        async move {
            let store = Store::open(Some(&url), &path).await.expect("open postgres");
            assert_eq!(store.kind(), "postgres");
            store
        }
    })
    .await;
    db.drop_db().await;
}

#[tokio::test]
async fn locked_sqlite_file_gives_busy_not_a_panic() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(None, dir.path()).await.expect("open");
    let mut other = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        dir.path().join("etahoiva.db").display()
    ))
    .await
    .expect("second connection");
    other.execute("BEGIN EXCLUSIVE").await.expect("lock");
    let started = std::time::Instant::now();
    let result = store.create_user(new_user("blocked", &[Role::Nurse])).await;
    assert!(matches!(result, Err(StoreError::Busy)), "{result:?}");
    assert!(result.as_ref().err().is_some_and(|e| e.is_transient()));
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "waited for the lock first"
    );
    other.execute("ROLLBACK").await.expect("unlock");
    store
        .create_user(new_user("blocked", &[Role::Nurse]))
        .await
        .expect("works once the lock is gone");
}

#[tokio::test]
async fn failed_migration_is_reported_and_keeps_existing_data() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("etahoiva.db");
    {
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", file.display()))
                .await
                .expect("create");
        // Someone else's table with our name: the first migration cannot apply.
        conn.execute("CREATE TABLE users (precious TEXT); INSERT INTO users VALUES ('keep me');")
            .await
            .expect("seed");
        conn.close().await.expect("close");
    }
    let err = Store::open(None, dir.path())
        .await
        .expect_err("migration must fail");
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
    assert!(err.to_string().contains("migration"), "{err}");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("reopen");
    let kept: String = sqlx::query_scalar("SELECT precious FROM users")
        .fetch_one(&mut conn)
        .await
        .expect("old data intact");
    assert_eq!(kept, "keep me");
    // Nothing of the failed migration is left behind.
    let areas: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'areas'")
        .fetch_one(&mut conn)
        .await
        .expect("schema");
    assert_eq!(areas, 0, "the failed migration was rolled back");
}

#[tokio::test]
async fn database_from_a_newer_release_is_refused_clearly() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    Store::open(None, dir.path())
        .await
        .expect("open")
        .close()
        .await;
    let mut conn = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        dir.path().join("etahoiva.db").display()
    ))
    .await
    .expect("connect");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'future', TRUE, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("pretend a newer release migrated");
    conn.close().await.expect("close");
    let err = Store::open(None, dir.path()).await.expect_err("refused");
    assert!(err.to_string().contains("newer version"), "{err}");
}

#[tokio::test]
async fn unsupported_database_url_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Store::open(Some("mysql://localhost/x"), dir.path())
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("unsupported database URL scheme"),
        "{err}"
    );
}

#[tokio::test]
async fn dropped_postgres_connections_recover() {
    use sqlx::Connection;
    let Some(admin_url) = common::postgres_admin_url("dropped_postgres_connections_recover") else {
        return;
    };
    let db = common::TempPgDatabase::create(&admin_url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(Some(&db.url), dir.path()).await.expect("open");
    store
        .create_user(new_user("before", &[Role::Nurse]))
        .await
        .expect("write");
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("admin");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .fetch_all(&mut admin)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the store held connections to drop");
    admin.close().await.expect("close");
    // The first use after the drop either reconnects or reports Unavailable; never panics.
    match store.ping().await {
        Ok(()) => {}
        Err(e) => assert!(e.is_transient(), "unexpected error kind: {e:?}"),
    }
    let mut recovered = false;
    for _ in 0..20 {
        if store.list_users().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the pool reconnects after dropped connections");
    assert_eq!(
        store.list_users().await.expect("list").len(),
        1,
        "data intact"
    );
    store.close().await;
    db.drop_db().await;
}
