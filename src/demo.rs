//! `etahoiva demo`: a realistic small organisation for a first look.

use crate::api::users::new_user;
use crate::store::{ClientChanges, NewClient, Role, Store, StoreError, TeamChanges, TeamKind};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "etahoiva-demo";
const SEEDED_KEY: &str = "demo_seeded";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid demo data: {0}")]
    Data(String),
}

/// A demo account: user name, display name, roles, language.
pub struct DemoLogin {
    pub username: &'static str,
    pub display_name: &'static str,
    pub roles: &'static [Role],
    pub language: &'static str,
}

pub const DEMO_LOGINS: &[DemoLogin] = &[
    DemoLogin {
        username: "admin",
        display_name: "Ylläpitäjä Aino Laine",
        roles: &[Role::Admin],
        language: "fi",
    },
    DemoLogin {
        username: "anna",
        display_name: "Anna Virtanen",
        roles: &[Role::Nurse],
        language: "fi",
    },
    DemoLogin {
        username: "mikko",
        display_name: "Mikko Korhonen",
        roles: &[Role::Nurse],
        language: "fi",
    },
    DemoLogin {
        username: "sofia",
        display_name: "Sofia Lindqvist",
        roles: &[Role::Nurse],
        language: "sv",
    },
    DemoLogin {
        username: "eeva",
        display_name: "Eeva Mäkinen",
        roles: &[Role::Nurse, Role::Admin],
        language: "fi",
    },
    DemoLogin {
        username: "jari",
        display_name: "Jari Niemi",
        roles: &[Role::Patrol],
        language: "fi",
    },
    DemoLogin {
        username: "liisa",
        display_name: "Liisa Heikkinen",
        roles: &[Role::Patrol],
        language: "fi",
    },
    DemoLogin {
        username: "henrik",
        display_name: "Henrik Björklund",
        roles: &[Role::Patrol],
        language: "sv",
    },
    DemoLogin {
        username: "tiina",
        display_name: "Tiina Rautio",
        roles: &[Role::Patrol],
        language: "fi",
    },
    DemoLogin {
        username: "paivi",
        display_name: "Päivi Laitinen",
        roles: &[Role::Supervisor],
        language: "fi",
    },
];

/// Door and key-safe instructions and care notes for the patrol, by client.
const DEMO_HOME_NOTES: &[(&str, &str)] = &[
    (
        "Avainsäilö ulko-oven oikealla puolella, koodi 2580.",
        "Diabetes; insuliini aamuisin. Kuulee huonosti vasemmalla.",
    ),
    (
        "Ovikoodi 1234, avain avainsäilössä porraskäytävässä.",
        "Muistisairaus; rauhoittuu puhumalla. Kaatuillut yöllä.",
    ),
    (
        "Takaovi lukitsematon päivisin; illalla avainsäilö, koodi 7741.",
        "Sydämen vajaatoiminta. Nesterajoitus 1,5 l.",
    ),
    (
        "Nyckelskåp vid ytterdörren, kod 3690.",
        "Nedsatt syn. Talar bara svenska.",
    ),
];

/// Clients: name, language, area index (0 Lestijoki, 1 Perhonjoki), address, named nurse.
const DEMO_CLIENTS: &[(&str, &str, usize, &str, &str)] = &[
    (
        "Aili Hautala",
        "fi",
        0,
        "Kirkkotie 12, 69100 Kannus",
        "anna",
    ),
    (
        "Toivo Kangas",
        "fi",
        0,
        "Asematie 4 B 3, 69100 Kannus",
        "anna",
    ),
    (
        "Helmi Rahkola",
        "fi",
        0,
        "Jokivarrentie 210, 69100 Kannus",
        "mikko",
    ),
    (
        "Väinö Ojala",
        "fi",
        0,
        "Toholammintie 35, 69300 Toholampi",
        "mikko",
    ),
    (
        "Siiri Paananen",
        "fi",
        0,
        "Sykäräisentie 88, 69310 Toholampi",
        "anna",
    ),
    (
        "Eino Kallio",
        "fi",
        0,
        "Lestintie 9, 69440 Lestijärvi",
        "eeva",
    ),
    (
        "Lyyli Myllymäki",
        "fi",
        0,
        "Kirkonkyläntie 21, 69440 Lestijärvi",
        "eeva",
    ),
    (
        "Ragnar Sundqvist",
        "sv",
        0,
        "Kyrkvägen 5, 68500 Kronoby",
        "sofia",
    ),
    (
        "Ingrid Höglund",
        "sv",
        0,
        "Nedervetilvägen 140, 68530 Kronoby",
        "sofia",
    ),
    (
        "Martta Niskanen",
        "fi",
        0,
        "Mäkitie 3, 69100 Kannus",
        "mikko",
    ),
    (
        "Oiva Rahja",
        "fi",
        1,
        "Kaustisentie 14, 69600 Kaustinen",
        "mikko",
    ),
    (
        "Elsa Salo",
        "fi",
        1,
        "Köyhäjoentie 52, 69600 Kaustinen",
        "anna",
    ),
    (
        "Lauri Kentala",
        "fi",
        1,
        "Vetelintie 7, 69700 Veteli",
        "eeva",
    ),
    ("Impi Jylhä", "fi", 1, "Patanantie 66, 69700 Veteli", "eeva"),
    (
        "Arvo Peltola",
        "fi",
        1,
        "Perhontie 18, 69950 Perho",
        "mikko",
    ),
    ("Saima Harju", "fi", 1, "Möttösentie 4, 69950 Perho", "anna"),
    (
        "Gunnel Storbacka",
        "sv",
        1,
        "Terjärvvägen 230, 68700 Kronoby",
        "sofia",
    ),
    (
        "Bertel Granholm",
        "sv",
        1,
        "Strandvägen 9, 68700 Kronoby",
        "sofia",
    ),
    (
        "Kerttu Huhtala",
        "fi",
        1,
        "Halsuantie 11, 69980 Perho",
        "eeva",
    ),
    (
        "Onni Tastula",
        "fi",
        1,
        "Ullavantie 27, 69600 Kaustinen",
        "anna",
    ),
];

/// Nurses' languages and skills.
const DEMO_NURSES: &[(&str, &[&str], &[&str])] = &[
    ("anna", &["fi"], &["medication", "diabetes"]),
    ("mikko", &["fi"], &["medication"]),
    ("sofia", &["sv", "fi"], &["medication", "wound_care"]),
    (
        "eeva",
        &["fi", "sv"],
        &["medication", "diabetes", "wound_care"],
    ),
];

/// Shifts of each demo day, civil times in the unit's zone: (nurse, start hour, end hour).
const DEMO_SHIFTS: &[(&str, i8, i8)] = &[
    ("anna", 7, 15),
    ("sofia", 7, 15),
    ("mikko", 13, 21),
    ("eeva", 13, 21),
];

/// A care plan for the demo client number `index`: medication every
/// morning, an evening check, and for some a lunchtime diabetes check or
/// wound care twice a week.
fn demo_plan(
    client: &crate::store::Client,
    index: usize,
) -> Result<Vec<crate::store::VisitRuleRecord>, DemoError> {
    use crate::schedule::generate::VisitRuleInput;
    let today = jiff::Timestamp::now()
        .to_zoned(
            jiff::tz::TimeZone::get(&client.time_zone)
                .map_err(|e| DemoError::Data(e.to_string()))?,
        )
        .date();
    let rule = |time: &str,
                rrule: &str,
                before: u32,
                after: u32,
                length: u32,
                purpose: &str,
                skill: Option<&str>| {
        VisitRuleInput {
            id: None,
            dtstart: format!("{today}T{time}"),
            rrule: Some(rrule.to_string()),
            exdates: vec![],
            rdates: vec![],
            window_before_min: before,
            window_after_min: after,
            length_min: length,
            purpose: purpose.to_string(),
            skill: skill.map(str::to_string),
            language: None,
        }
    };
    let sv = client.language == "sv";
    let minute = (index % 4) * 10;
    let mut rules = vec![
        rule(
            &format!("08:{minute:02}"),
            "FREQ=DAILY",
            60,
            60,
            10,
            if sv {
                "Morgonmedicin"
            } else {
                "Aamulääkkeet"
            },
            Some("medication"),
        ),
        rule(
            &format!("19:{minute:02}"),
            "FREQ=DAILY",
            30,
            60,
            5,
            if sv {
                "Kvällskontroll"
            } else {
                "Iltatarkistus"
            },
            None,
        ),
    ];
    if index.is_multiple_of(3) {
        rules.push(rule(
            "12:00",
            "FREQ=DAILY",
            45,
            45,
            10,
            if sv { "Blodsocker" } else { "Verensokeri" },
            Some("diabetes"),
        ));
    }
    if index % 5 == 1 {
        rules.push(rule(
            "14:00",
            "FREQ=WEEKLY;BYDAY=TU,FR",
            60,
            60,
            15,
            if sv { "Sårvård" } else { "Haavanhoito" },
            Some("wound_care"),
        ));
    }
    rules
        .into_iter()
        .map(|r| {
            r.into_record(client)
                .map_err(|e| DemoError::Data(e.to_string()))
        })
        .collect()
}

/// Makes sure the demo has shifts today and tomorrow, visits generated and
/// the days planned. Run at every demo start.
pub async fn prepare_days(
    store: &Store,
    settings: &crate::settings::Settings,
) -> Result<(), DemoError> {
    let data = |e: crate::schedule::ScheduleError| DemoError::Data(e.to_string());
    let tz = jiff::tz::TimeZone::get(&settings.unit_time_zone)
        .map_err(|e| DemoError::Data(e.to_string()))?;
    let now = crate::store::now_ms();
    let today = jiff::Timestamp::now().to_zoned(tz.clone()).date();
    let nurses: std::collections::HashMap<String, String> = store
        .list_nurses()
        .await?
        .into_iter()
        .map(|n| (n.username, n.id))
        .collect();
    crate::schedule::generate::extend_horizon(store, now, settings.schedule_horizon_days)
        .await
        .map_err(data)?;
    for day in [
        today,
        today
            .tomorrow()
            .map_err(|e| DemoError::Data(e.to_string()))?,
    ] {
        let (from, to) = crate::schedule::day_range(day, &tz);
        if store.shifts_between(from, to).await?.is_empty() {
            for (nurse, start, end) in DEMO_SHIFTS {
                let Some(id) = nurses.get(*nurse) else {
                    continue;
                };
                let at = |hour: i8| {
                    day.at(hour, 0, 0, 0)
                        .to_zoned(tz.clone())
                        .map(|z| z.timestamp().as_millisecond())
                        .map_err(|e| DemoError::Data(e.to_string()))
                };
                store.add_shift(id, at(*start)?, at(*end)?).await?;
            }
        }
        crate::schedule::assign::assign_day(store, settings, day, false, now)
            .await
            .map_err(data)?;
    }
    Ok(())
}

/// Seeds the demo organisation unless it is there already. Returns true when it seeded.
pub async fn seed(store: &Store) -> Result<bool, DemoError> {
    if store.get_meta(SEEDED_KEY).await?.is_some() {
        return Ok(false);
    }
    let mut ids = std::collections::HashMap::new();
    for login in DEMO_LOGINS {
        let roles = login.roles.to_vec();
        let (username, display, language) = (login.username, login.display_name, login.language);
        let new = tokio::task::spawn_blocking(move || {
            new_user(
                username,
                Some(display),
                roles,
                DEMO_PASSWORD,
                Some(language),
            )
        })
        .await
        .map_err(|e| DemoError::Data(e.to_string()))?
        .map_err(DemoError::Data)?;
        let user = store.create_user(new).await?;
        ids.insert(login.username, user.id);
    }
    let id = |name: &str| {
        ids.get(name)
            .cloned()
            .ok_or_else(|| DemoError::Data(format!("no user {name}")))
    };
    let areas = [
        store.create_area("Lestijoki").await?,
        store.create_area("Perhonjoki").await?,
    ];
    let nurses = ["anna", "mikko", "sofia", "eeva"]
        .iter()
        .map(|n| id(n))
        .collect::<Result<Vec<_>, _>>()?;
    store
        .create_team("Etähoitokeskus", TeamKind::Central, None, &nurses)
        .await?;
    let lesti = store
        .create_team(
            "Yöpartio Lestijoki",
            TeamKind::Patrol,
            Some(&areas[0].id),
            &[id("jari")?, id("liisa")?],
        )
        .await?;
    let perho = store
        .create_team(
            "Yöpartio Perhonjoki",
            TeamKind::Patrol,
            Some(&areas[1].id),
            &[id("henrik")?, id("tiina")?],
        )
        .await?;
    // The neighbouring valley's patrol is next when nobody acknowledges.
    // Without rosters both patrols are on call every night.
    for (team, next) in [(&lesti, &perho), (&perho, &lesti)] {
        store
            .update_team(
                &team.id,
                &TeamChanges {
                    escalates_to: Some(Some(next.id.clone())),
                    ..TeamChanges::default()
                },
            )
            .await?;
    }
    for (index, (name, language, area, address, nurse)) in DEMO_CLIENTS.iter().enumerate() {
        let client = store
            .create_client(NewClient {
                name: name.to_string(),
                language: language.to_string(),
                area_id: areas[*area].id.clone(),
                address: address.to_string(),
                named_nurse_id: Some(id(nurse)?),
                consent_auto_answer: index % 4 != 3,
                time_zone: None,
            })
            .await?;
        let (door, notes) = DEMO_HOME_NOTES[if *language == "sv" { 3 } else { index % 3 }];
        store
            .update_client(
                &client.id,
                &ClientChanges {
                    door_instructions: Some(door.to_string()),
                    care_notes: Some(notes.to_string()),
                    high_risk: Some(index % 5 == 1),
                    supervision_class: Some(if index % 2 == 0 { "180s" } else { "5h" }.into()),
                    relative_contact: Some(Some(format!("+358 40 555 {:04}", 1000 + index))),
                    relative_name: Some(Some("Omainen".into())),
                    ..ClientChanges::default()
                },
            )
            .await?;
        store
            .replace_plan(&client.id, &demo_plan(&client, index)?)
            .await?;
    }
    for (nurse, languages, skills) in DEMO_NURSES {
        let languages: Vec<String> = languages.iter().map(|s| s.to_string()).collect();
        let skills: Vec<String> = skills.iter().map(|s| s.to_string()).collect();
        store
            .set_nurse_profile(&id(nurse)?, &languages, &skills)
            .await?;
    }
    store.set_meta(SEEDED_KEY, "1").await?;
    store
        .audit(Some("system"), "demo.seeded", None, None)
        .await?;
    Ok(true)
}

/// Starts `count` simulated home terminals, each with its own provisioned
/// identity, connecting to the hub over the real terminal link. Bundles are
/// kept under `DATA_DIR/terminals/` and reused by the next run. The first
/// terminal serves the kiosk page; the second raises a simulated wristband
/// alarm every ten minutes.
pub async fn start_terminals(
    hub: &crate::startup::Hub,
    count: usize,
) -> Result<Vec<etahoiva_edge::agent::Running>, DemoError> {
    use etahoiva_firmware_config::{AlarmInput, AlarmKind, InputSource, Profile};
    let state = hub.state();
    let data_dir = &state.settings.data_dir;
    let device_addr = hub.device_addr();
    let host = if device_addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        device_addr.ip().to_string()
    };
    let hub_url = format!(
        "wss://{host}:{}{}",
        device_addr.port(),
        etahoiva_proto::LINK_PATH
    );
    let ca = crate::devices::identity::DeviceCa::load_or_create(data_dir)
        .map_err(|e| DemoError::Data(e.to_string()))?;
    // The demo hub runs on its development CA.
    let hub_ca_pem =
        crate::devices::hub_ca_pem(data_dir, None).map_err(|e| DemoError::Data(e.to_string()))?;
    let clients = state.store.list_clients().await?;
    let mut running = Vec::with_capacity(count);
    for i in 0..count {
        let dir = data_dir.join("terminals").join(format!("{:03}", i + 1));
        let profile_path = dir.join("profile.toml");
        if !profile_path.exists() {
            let client = clients.get(i % clients.len().max(1));
            crate::devices::provision(
                &state.store,
                &ca,
                crate::devices::ProvisionRequest {
                    name: match client {
                        Some(c) => format!("{}, kotipääte", c.name),
                        None => format!("Demopääte {}", i + 1),
                    },
                    hub_url: hub_url.clone(),
                    client_id: client.map(|c| c.id.clone()),
                    language: None,
                    hub_ca_pem: hub_ca_pem.clone(),
                    out: dir.clone(),
                    cert_days: state.settings.device_cert_days,
                },
            )
            .await
            .map_err(|e| DemoError::Data(e.to_string()))?;
        }
        let mut profile =
            Profile::load(&profile_path).map_err(|e| DemoError::Data(e.to_string()))?;
        // The hub may listen on another port this time.
        profile.hub.url = hub_url.clone();
        profile.settings.kiosk.listen = "127.0.0.1:0".into();
        if i == 1 {
            profile.settings.alarm_inputs = vec![AlarmInput {
                name: "rannekello".into(),
                kind: AlarmKind::Wristband,
                source: InputSource::Simulated { every_secs: 600 },
            }];
        }
        // The first terminal's kiosk is for a person with a browser and a camera;
        // the others answer calls with a generated picture and tone.
        let options = etahoiva_edge::agent::RunOptions {
            kiosk: i == 0,
            simulate: i != 0,
        };
        let terminal = etahoiva_edge::agent::start(profile, options)
            .await
            .map_err(|e| DemoError::Data(e.to_string()))?;
        running.push(terminal);
    }
    Ok(running)
}
