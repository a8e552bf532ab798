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
/// Care plans, visits, their lifecycle and the missed-visit alert, the same on both backends.
async fn schedule(store: &Store) {
    use etahoiva::schedule::generate::{extend_horizon, VisitRuleInput};
    use etahoiva::schedule::lifecycle::{Action, RetryPolicy, VisitState, VisitStatus};
    let nurse = store
        .create_user(new_user("planner-nurse", &[Role::Nurse]))
        .await
        .expect("nurse");
    store
        .set_nurse_profile(&nurse.id, &["fi".into(), "sv".into()], &["diabetes".into()])
        .await
        .expect("profile");
    let nurses = store.list_nurses().await.expect("nurses");
    let me = nurses.iter().find(|n| n.id == nurse.id).expect("listed");
    assert_eq!(me.languages, ["fi", "sv"]);
    assert_eq!(me.skills, ["diabetes"]);
    let area = store.create_area("Kaustinen").await.expect("area");
    let client = store
        .create_client(NewClient {
            name: "Eino Kallio".into(),
            language: "fi".into(),
            area_id: area.id.clone(),
            address: "Lestintie 9".into(),
            named_nurse_id: Some(nurse.id.clone()),
            consent_auto_answer: true,
            time_zone: Some("Europe/Stockholm".into()),
        })
        .await
        .expect("client");
    let today = jiff::Zoned::now()
        .in_tz("Europe/Stockholm")
        .expect("zone")
        .date();
    let rule = VisitRuleInput {
        id: None,
        dtstart: format!("{today}T10:00"),
        rrule: Some("FREQ=DAILY;COUNT=5".into()),
        exdates: vec![],
        rdates: vec![],
        window_before_min: 30,
        window_after_min: 30,
        length_min: 10,
        purpose: "Blodsocker".into(),
        skill: Some("diabetes".into()),
        language: None,
    }
    .into_record(&client)
    .expect("valid rule");
    store
        .replace_plan(&client.id, std::slice::from_ref(&rule))
        .await
        .expect("plan");
    assert_eq!(store.plan_rules(&client.id).await.expect("rules"), [rule]);
    let now = etahoiva::store::now_ms();
    let first = extend_horizon(store, now - 86_400_000, 14)
        .await
        .expect("generate");
    let again = extend_horizon(store, now - 86_400_000, 14)
        .await
        .expect("generate");
    assert!(first.visits >= 4, "{first:?}");
    assert_eq!(again.written, 0, "generation is idempotent");
    // The hourly roll generates only the newest slice of the horizon once it has run.
    use etahoiva::schedule::generate::roll_horizon;
    let rolled = roll_horizon(store, now, 14).await.expect("roll");
    assert!(
        rolled.visits >= 4,
        "the first roll covers the horizon: {rolled:?}"
    );
    let next = roll_horizon(store, now + 3_600_000, 14)
        .await
        .expect("roll");
    assert_eq!(
        next.visits, 0,
        "a later roll covers only the last day: {next:?}"
    );
    let visits = store
        .client_visits(&client.id, now - 2 * 86_400_000, now + 14 * 86_400_000)
        .await
        .expect("visits");
    assert_eq!(visits.len(), first.visits);
    // The zone is the client's: 10:00 in Stockholm.
    let local = jiff::Timestamp::from_millisecond(visits[0].planned_at)
        .expect("ts")
        .to_zoned(jiff::tz::TimeZone::get("Europe/Stockholm").expect("tz"));
    assert_eq!((local.hour(), local.minute()), (10, 0));

    // Lifecycle to missed, twice from two "hubs": one stored transition, one alert.
    let v = &visits[0];
    let state = VisitState {
        status: VisitStatus::Planned,
        attempts: 0,
        next_attempt_at: None,
        status_since: v.status_since,
        window_start: v.window_start,
        window_end: v.window_end,
    };
    let t = state
        .step(Action::Tick, v.window_end + 1, &RetryPolicy::default())
        .expect("valid")
        .expect("missed");
    assert!(t.missed);
    let (a, b) = tokio::join!(
        store.transition_visit(&v.id, VisitStatus::Planned, &t, now, None, None, None),
        store.transition_visit(&v.id, VisitStatus::Planned, &t, now, None, None, None),
    );
    assert_eq!(
        [a.expect("first"), b.expect("second")]
            .iter()
            .filter(|x| **x)
            .count(),
        1,
        "exactly one writer wins"
    );
    let alerts = store.recent_alerts(100).await.expect("alerts");
    assert_eq!(
        alerts
            .iter()
            .filter(|x| x.visit_id.as_deref() == Some(v.id.as_str()))
            .count(),
        1
    );
    assert_eq!(
        store.visit_timeline(&v.id).await.expect("timeline").len(),
        1
    );

    // Assignment and the worklist.
    let w = &visits[1];
    store
        .apply_assignments(&[etahoiva::store::Assignment {
            visit_id: w.id.clone(),
            nurse_id: Some(nurse.id.clone()),
            scheduled_start: Some(w.planned_at),
        }])
        .await
        .expect("assign");
    let list = store
        .worklist(
            &nurse.id,
            w.window_start - 3_600_000,
            w.window_end + 3_600_000,
        )
        .await
        .expect("worklist");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].client_name, "Eino Kallio");
    // Edits keep finished visits: the missed one stays when the rule goes.
    store
        .replace_plan(&client.id, &[])
        .await
        .expect("empty plan");
    let kept = store.get_visit(&v.id).await.expect("history kept");
    assert_eq!(kept.status, "missed");
    assert_eq!(kept.rule_id, None);
}

/// Alarms on the store with the engine's clock driven by the test: exactly
/// once under concurrency, merging, escalation timers, supervision.
async fn alarms(store: &Store) {
    use etahoiva::alerts::engine::Engine;
    use etahoiva::alerts::lifecycle::Action;
    use etahoiva::alerts::{AlertsError, Kind, Priority};
    use etahoiva::store::alerts::{AlarmInput, Intake};
    use etahoiva::store::{now_ms, ClientChanges, NewDevice};

    let area = store.create_area("Kalajoki").await.expect("area");
    let nurse = store
        .create_user(new_user("alarm-nurse", &[Role::Nurse]))
        .await
        .expect("nurse");
    let p1 = store
        .create_user(new_user("alarm-p1", &[Role::Patrol]))
        .await
        .expect("patrol");
    let p2 = store
        .create_user(new_user("alarm-p2", &[Role::Patrol]))
        .await
        .expect("patrol");
    store
        .create_user(new_user("alarm-tech", &[Role::Admin]))
        .await
        .expect("technician");
    let central = store
        .create_team(
            "Kalajoki keskus",
            TeamKind::Central,
            None,
            std::slice::from_ref(&nurse.id),
        )
        .await
        .expect("central");
    let patrol = store
        .create_team(
            "Kalajoki partio",
            TeamKind::Patrol,
            Some(&area.id),
            &[p1.id.clone(), p2.id.clone()],
        )
        .await
        .expect("patrol");
    let now = now_ms();
    store
        .add_duty(&patrol.id, now - 3_600_000, now + 8 * 3_600_000)
        .await
        .expect("duty");
    let client = store
        .create_client(NewClient {
            name: "Hilja Alarm".into(),
            language: "fi".into(),
            area_id: area.id.clone(),
            address: "Meritie 1".into(),
            named_nurse_id: None,
            consent_auto_answer: false,
            time_zone: None,
        })
        .await
        .expect("client");
    store
        .update_client(
            &client.id,
            &ClientChanges {
                high_risk: Some(true),
                relative_contact: Some(Some("+358501112222".into())),
                ..ClientChanges::default()
            },
        )
        .await
        .expect("alarm details");
    let device_id = format!("alarm-device-{}", store.kind());
    store
        .create_device(&NewDevice {
            id: device_id.clone(),
            name: "Hilja".into(),
            client_id: Some(client.id.clone()),
            cert_fingerprint: "fp".into(),
            cert_not_after: now + 86_400_000,
            settings_json: "{}".into(),
        })
        .await
        .expect("device");

    let settings = etahoiva::settings::Settings {
        alarm_day_start: "00:00".into(),
        alarm_day_end: "00:00".into(),
        ..Default::default()
    };
    let devices = std::sync::Arc::new(etahoiva::devices::registry::Registry::default());
    let engine = Engine::start(store.clone(), devices, &settings)
        .await
        .expect("engine");
    let input = |key: &str| AlarmInput {
        device_id: device_id.clone(),
        client_id: Some(client.id.clone()),
        event: etahoiva_proto::Event {
            key: key.to_string(),
            kind: etahoiva_proto::EventKind::HelpButton,
            occurred_at: now,
            detail: serde_json::json!({"input": "kiosk"}),
        },
        kind: Kind::HelpButton,
        priority: Priority::High,
    };

    // 30 presses at once, each also sent a second time (a terminal that
    // reconnected): one alert counting 30, every event stored once.
    let mut tasks = Vec::new();
    for i in 0..30 {
        for _ in 0..2 {
            let engine = engine.clone();
            let input = input(&format!("press-{i}"));
            tasks.push(tokio::spawn(async move { engine.intake(input).await }));
        }
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task").expect("stored"));
    }
    let new: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, Intake::New(_)))
        .collect();
    assert_eq!(new.len(), 1, "{outcomes:?}");
    let alert_id = new[0].alert_id().unwrap().to_string();
    assert!(outcomes
        .iter()
        .all(|o| o.alert_id() == Some(alert_id.as_str())));
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Intake::Duplicate(_)))
            .count(),
        30
    );
    let view = store.alert_view(&alert_id).await.expect("view");
    assert_eq!(view.count, 30);
    assert_eq!(view.status, "routed");
    assert_eq!(
        view.team_id.as_deref(),
        Some(patrol.id.as_str()),
        "night: the area's patrol"
    );
    assert_eq!(
        store.alert_event_keys(&alert_id).await.expect("keys").len(),
        30
    );
    assert_eq!(
        store
            .device_events(&device_id, 100)
            .await
            .expect("events")
            .len(),
        30
    );

    // A terminal the store does not know (its events break a constraint)
    // arriving in the same batch as others: only its own alarm fails.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let engine = engine.clone();
        let mut input = input(&format!("mixed-{i}"));
        if i == 2 {
            input.device_id = "no-such-terminal".into();
            input.client_id = None;
        }
        tasks.push(tokio::spawn(async move { engine.intake(input).await }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    assert!(results[2].is_err(), "{:?}", results[2]);
    for (i, r) in results.iter().enumerate() {
        if i != 2 {
            assert!(
                matches!(r, Ok(Intake::Merged(id)) if *id == alert_id),
                "{i}: {r:?}"
            );
        }
    }

    // Keys no index or text column takes as they are (a NUL, 3 kB) are
    // stored under a digest: once, and recognised when sent again.
    for odd in ["nul\u{0}key".to_string(), "k".repeat(3000)] {
        let mut first = input(&odd);
        first.event.detail = serde_json::json!({"message": "help\u{0}me"});
        let stored = engine.intake(first.clone()).await.expect("stored");
        assert!(matches!(stored, Intake::Merged(_)), "{stored:?}");
        let again = engine.intake(first).await.expect("stored");
        assert!(matches!(again, Intake::Duplicate(Some(_))), "{again:?}");
    }

    // Timers: nobody acknowledges; next team (the central unit), then the supervisors.
    // The missed visit of the schedule section waits to be routed; the timer does it.
    engine.run_timers(now).await.expect("timers");
    let missed: Vec<_> = store
        .recent_alerts(100)
        .await
        .expect("alerts")
        .into_iter()
        .filter(|a| a.kind == "missed_visit")
        .collect();
    assert!(!missed.is_empty());
    assert!(
        missed
            .iter()
            .all(|a| a.status == "routed" && a.team_id.is_some()),
        "{missed:?}"
    );
    assert_eq!(
        engine.run_timers(now).await.expect("timers"),
        0,
        "not yet due"
    );
    // Ours escalates (and the missed visits routed just before).
    assert!(engine.run_timers(now + 121_000).await.expect("timers") >= 1);
    let view = store.alert_view(&alert_id).await.expect("view");
    assert_eq!(view.level, 1);
    assert_eq!(view.escalated_team_id.as_deref(), Some(central.id.as_str()));
    assert!(view.escalate_at.unwrap() >= now + 241_000);
    engine.run_timers(now + 250_000).await.expect("timers");
    assert_eq!(store.alert_view(&alert_id).await.expect("view").level, 2);

    // Two patrol members tap acknowledge at the same moment: one has it.
    let a = {
        let engine = engine.clone();
        let (id, user) = (alert_id.clone(), p1.id.clone());
        tokio::spawn(async move { engine.act(&id, &user, &Action::Acknowledge).await })
    };
    let b = {
        let engine = engine.clone();
        let (id, user) = (alert_id.clone(), p2.id.clone());
        tokio::spawn(async move { engine.act(&id, &user, &Action::Acknowledge).await })
    };
    let (a, b) = (a.await.expect("task"), b.await.expect("task"));
    let winners = [&a, &b].iter().filter(|r| r.is_ok()).count();
    let view = store.alert_view(&alert_id).await.expect("view");
    let holder = view.claimed_by.clone().expect("claimed");
    // The other is refused: taken by someone else, or changed under their hands.
    assert_eq!(winners, 1, "{a:?} {b:?}");
    assert!(matches!(
        [a, b].into_iter().find(|r| r.is_err()),
        Some(Err(AlertsError::Action(_) | AlertsError::Concurrent))
    ));
    let loser = if holder == p1.id { &p2.id } else { &p1.id };
    assert!(engine
        .act(&alert_id, loser, &Action::EnRoute)
        .await
        .is_err());
    let timeline = store.alert_timeline(&alert_id).await.expect("timeline");
    assert_eq!(
        timeline
            .iter()
            .filter(|e| e.action == "acknowledge")
            .count(),
        1,
        "one acknowledgement on the timeline"
    );

    // A call on record: offered, answered once, ended once.
    store
        .create_call(&etahoiva::store::calls::NewCall {
            id: "alarm-call-1",
            kind: "alarm",
            client_id: Some(&client.id),
            visit_id: None,
            alert_id: Some(&alert_id),
            device_id: Some(&device_id),
            caller_id: &p1.id,
            auto_answer: true,
            now,
        })
        .await
        .expect("call");
    assert!(store
        .call_reported("alarm-call-1", "answered", None, now + 1_000)
        .await
        .expect("answered"));
    assert!(store
        .call_reported("alarm-call-1", "ended", Some("ended"), now + 60_000)
        .await
        .expect("ended"));
    assert!(
        !store
            .call_reported("alarm-call-1", "answered", None, now + 70_000)
            .await
            .expect("late"),
        "an ended call stays ended"
    );
    // Who took part: a join while already in the call is not a second one;
    // leaving and joining again is.
    for (who, role, at) in [
        ("dev-1", "client", 2_000),
        ("nurse-1", "caller", 3_000),
        ("nurse-1", "caller", 3_500),
    ] {
        store
            .call_joined("alarm-call-1", who, role, "Name", now + at)
            .await
            .expect("joined");
    }
    store
        .call_left("alarm-call-1", "nurse-1", now + 30_000)
        .await
        .expect("left");
    store
        .call_joined("alarm-call-1", "nurse-1", "caller", "Name", now + 40_000)
        .await
        .expect("joined again");
    store
        .call_joined("no-such-call", "x", "guest", "X", now)
        .await
        .expect("a call that does not exist records nobody");
    let calls = store.calls_of_alert(&alert_id).await.expect("calls");
    let people: Vec<(&str, Option<i64>)> = calls[0]
        .participants
        .iter()
        .map(|p| (p.participant.as_str(), p.left_at))
        .collect();
    assert_eq!(
        people,
        [
            ("dev-1", None),
            ("nurse-1", Some(now + 30_000)),
            ("nurse-1", None)
        ]
    );
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].answered_at, Some(now + 1_000));
    assert_eq!(calls[0].ended_at, Some(now + 60_000));
    assert_eq!(calls[0].end_reason.as_deref(), Some("ended"));
    assert!(calls[0].auto_answer);

    // Supervision: a high-risk client's terminal silent for two hours.
    let raised = engine
        .supervise(now + 2 * 3_600_000)
        .await
        .expect("supervise");
    assert_eq!(raised, 1);
    assert_eq!(
        engine
            .supervise(now + 2 * 3_600_000 + 60_000)
            .await
            .expect("again"),
        0,
        "one outage, one alert"
    );
    let silent = store
        .open_alerts_of_device(&device_id)
        .await
        .expect("open")
        .into_iter()
        .find(|a| a.kind == "terminal_silent")
        .expect("silent alert");
    assert_eq!(silent.status, "routed", "routed at once");
    let notices = store.notices(false, 100).await.expect("notices");
    let mine: Vec<_> = notices
        .iter()
        .filter(|n| n.alert_id.as_deref() == Some(silent.id.as_str()))
        .collect();
    for who in ["client", "relative", "technician"] {
        assert!(
            mine.iter().any(|n| n.recipient == who),
            "{who} told: {mine:?}"
        );
    }
    let relative = mine.iter().find(|n| n.recipient == "relative").unwrap();
    assert_eq!(relative.address.as_deref(), Some("+358501112222"));
    assert!(relative.text.contains("Hilja Alarm"), "{}", relative.text);
    // The terminal comes back: the silence alert closes by itself.
    engine.device_connected(&device_id, 3).await;
    let closed = store.alert_view(&silent.id).await.expect("view");
    assert_eq!(closed.status, "resolved");
    assert_eq!(closed.outcome.as_deref(), Some("connection_restored"));
}

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
    schedule(&store).await;
    alarms(&store).await;
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
