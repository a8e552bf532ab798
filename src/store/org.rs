//! The organisation: areas, teams (the central unit, night patrols) and clients.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{execute, new_id, now_ms, with_pool, Store, StoreError, StoreResult};

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Area {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TeamKind {
    /// The central telecare unit.
    Central,
    /// A night-patrol team of one area.
    Patrol,
}

impl TeamKind {
    fn as_str(self) -> &'static str {
        match self {
            TeamKind::Central => "central",
            TeamKind::Patrol => "patrol",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub kind: TeamKind,
    pub area_id: Option<String>,
    /// User ids of the members.
    pub members: Vec<String>,
    /// The team that gets this team's alerts nobody acknowledged in time.
    pub escalates_to: Option<String>,
}

/// A period a team is on duty.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct DutyPeriod {
    pub id: String,
    pub team_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// Changes to a team; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct TeamChanges {
    pub name: Option<String>,
    pub members: Option<Vec<String>>,
    /// `Some(None)` clears it.
    pub escalates_to: Option<Option<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// `fi` or `sv`.
    pub language: String,
    pub area_id: String,
    pub address: String,
    /// IANA time zone of the home, `Europe/Helsinki` unless set.
    pub time_zone: String,
    /// The client's named nurse (vastuuhoitaja), a user id.
    pub named_nurse_id: Option<String>,
    /// Consent to answer scheduled care visits automatically.
    pub consent_auto_answer: bool,
    pub created_at: i64,
    /// How long the terminal may stay silent: `90s`, `180s`, `5h` or `25h`
    /// (one step stricter at night).
    pub supervision_class: String,
    /// Supervised at the strictest class day and night.
    pub high_risk: bool,
    /// Door, key and key-safe instructions for the patrol.
    pub door_instructions: String,
    /// What a patrol or nurse must know on an alarm.
    pub care_notes: String,
    /// The relative told of outages.
    pub relative_name: Option<String>,
    /// The relative's phone number or e-mail address.
    pub relative_contact: Option<String>,
    /// Video on alarms: `never`, `ring` (default) or `open_at_once`.
    pub alarm_video: String,
}

impl Client {
    /// A new client with a fresh id; the alarm details start at their
    /// defaults (supervision class 25h, video on alarms rings).
    pub fn from_new(new: NewClient, created_at: i64) -> Client {
        Client {
            id: new_id(),
            name: new.name,
            language: new.language,
            area_id: new.area_id,
            address: new.address,
            time_zone: new.time_zone.unwrap_or_else(|| "Europe/Helsinki".into()),
            named_nurse_id: new.named_nurse_id,
            consent_auto_answer: new.consent_auto_answer,
            created_at,
            supervision_class: "25h".into(),
            high_risk: false,
            door_instructions: String::new(),
            care_notes: String::new(),
            relative_name: None,
            relative_contact: None,
            alarm_video: "ring".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewClient {
    pub name: String,
    pub language: String,
    pub area_id: String,
    pub address: String,
    pub named_nurse_id: Option<String>,
    pub consent_auto_answer: bool,
    /// IANA zone; `Europe/Helsinki` when not given.
    pub time_zone: Option<String>,
}

/// Changes to a client; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub language: Option<String>,
    pub area_id: Option<String>,
    pub address: Option<String>,
    pub time_zone: Option<String>,
    /// `Some(None)` clears the named nurse.
    pub named_nurse_id: Option<Option<String>>,
    pub consent_auto_answer: Option<bool>,
    pub supervision_class: Option<String>,
    pub high_risk: Option<bool>,
    pub door_instructions: Option<String>,
    pub care_notes: Option<String>,
    /// `Some(None)` clears the relative.
    pub relative_name: Option<Option<String>>,
    pub relative_contact: Option<Option<String>>,
    pub alarm_video: Option<String>,
}

const CLIENT_COLUMNS: &str = "id, name, language, area_id, address, time_zone, named_nurse_id, \
    consent_auto_answer, created_at, supervision_class, high_risk, door_instructions, care_notes, \
    relative_name, relative_contact, alarm_video";

impl Store {
    pub async fn create_area(&self, name: &str) -> StoreResult<Area> {
        let area = Area {
            id: new_id(),
            name: name.to_string(),
        };
        execute!(self, pool => sqlx::query("INSERT INTO areas (id, name) VALUES ($1, $2)")
            .bind(&area.id)
            .bind(&area.name)
            .execute(pool)
            .await)
        .map_err(|e| StoreError::from_sqlx(e, "area"))?;
        Ok(area)
    }

    pub async fn list_areas(&self) -> StoreResult<Vec<Area>> {
        with_pool!(self, pool => sqlx::query_as::<_, Area>("SELECT id, name FROM areas ORDER BY name")
            .fetch_all(pool)
            .await)
        .map_err(|e| StoreError::from_sqlx(e, "area"))
    }

    pub async fn create_team(
        &self,
        name: &str,
        kind: TeamKind,
        area_id: Option<&str>,
        members: &[String],
    ) -> StoreResult<Team> {
        let id = new_id();
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO teams (id, name, kind, area_id) VALUES ($1, $2, $3, $4)")
                .bind(&id)
                .bind(name)
                .bind(kind.as_str())
                .bind(area_id)
                .execute(&mut *tx)
                .await?;
            for member in members {
                sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(member)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "team"))?;
        Ok(Team {
            id,
            name: name.to_string(),
            kind,
            area_id: area_id.map(str::to_string),
            members: members.to_vec(),
            escalates_to: None,
        })
    }

    pub async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        let (teams, members) = with_pool!(self, pool => async {
            let teams = sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>)>(
                "SELECT id, name, kind, area_id, escalates_to FROM teams ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            let members = sqlx::query_as::<_, (String, String)>(
                "SELECT team_id, user_id FROM team_members ORDER BY user_id",
            )
            .fetch_all(pool)
            .await?;
            Ok::<_, sqlx::Error>((teams, members))
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "team"))?;
        teams
            .into_iter()
            .map(|(id, name, kind, area_id, escalates_to)| {
                let kind = match kind.as_str() {
                    "central" => TeamKind::Central,
                    "patrol" => TeamKind::Patrol,
                    other => return Err(StoreError::Corrupt(format!("team kind {other:?}"))),
                };
                let members = members
                    .iter()
                    .filter(|(team, _)| *team == id)
                    .map(|(_, user)| user.clone())
                    .collect();
                Ok(Team {
                    id,
                    name,
                    kind,
                    area_id,
                    members,
                    escalates_to,
                })
            })
            .collect()
    }

    pub async fn get_team(&self, id: &str) -> StoreResult<Team> {
        self.list_teams()
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(StoreError::NotFound("team"))
    }

    /// Renames a team, replaces its members or its escalation team.
    pub async fn update_team(&self, id: &str, c: &TeamChanges) -> StoreResult<Team> {
        let found = with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE teams SET name = COALESCE($2, name), \
                 escalates_to = CASE WHEN $3 THEN $4 ELSE escalates_to END WHERE id = $1",
            )
            .bind(id)
            .bind(&c.name)
            .bind(c.escalates_to.is_some())
            .bind(c.escalates_to.clone().flatten())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            if let Some(members) = &c.members {
                sqlx::query("DELETE FROM team_members WHERE team_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for member in members {
                    sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                        .bind(id)
                        .bind(member)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "team"))?;
        if !found {
            return Err(StoreError::NotFound("team"));
        }
        self.get_team(id).await
    }

    pub async fn add_duty(
        &self,
        team_id: &str,
        starts_at: i64,
        ends_at: i64,
    ) -> StoreResult<DutyPeriod> {
        let duty = DutyPeriod {
            id: new_id(),
            team_id: team_id.to_string(),
            starts_at,
            ends_at,
        };
        execute!(self, pool => sqlx::query(
            "INSERT INTO team_duty (id, team_id, starts_at, ends_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&duty.id)
        .bind(team_id)
        .bind(starts_at)
        .bind(ends_at)
        .bind(now_ms())
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "duty period"))?;
        Ok(duty)
    }

    /// A team's duty periods ending after `since`.
    pub async fn team_duty(&self, team_id: &str, since: i64) -> StoreResult<Vec<DutyPeriod>> {
        with_pool!(self, pool => sqlx::query_as::<_, DutyPeriod>(
            "SELECT id, team_id, starts_at, ends_at FROM team_duty WHERE team_id = $1 AND ends_at > $2 ORDER BY starts_at",
        )
        .bind(team_id)
        .bind(since)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "duty period"))
    }

    pub async fn delete_duty(&self, id: &str) -> StoreResult<()> {
        let n = execute!(self, pool => sqlx::query("DELETE FROM team_duty WHERE id = $1").bind(id).execute(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "duty period"))?;
        if n == 0 {
            return Err(StoreError::NotFound("duty period"));
        }
        Ok(())
    }

    pub async fn create_client(&self, new: NewClient) -> StoreResult<Client> {
        let client = Client::from_new(new, now_ms());
        execute!(self, pool => sqlx::query(
            "INSERT INTO clients (id, name, language, area_id, address, time_zone, named_nurse_id, consent_auto_answer, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(&client.language)
        .bind(&client.area_id)
        .bind(&client.address)
        .bind(&client.time_zone)
        .bind(&client.named_nurse_id)
        .bind(client.consent_auto_answer)
        .bind(client.created_at)
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "client"))?;
        Ok(client)
    }

    pub async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY name");
        with_pool!(self, pool => sqlx::query_as::<_, Client>(&sql)
        .fetch_all(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "client"))
    }
}

impl Store {
    /// Every client by id.
    pub async fn clients_by_id(&self) -> StoreResult<std::collections::HashMap<String, Client>> {
        Ok(self
            .list_clients()
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect())
    }

    pub async fn get_client(&self, id: &str) -> StoreResult<Client> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1");
        with_pool!(self, pool => sqlx::query_as::<_, Client>(&sql).bind(id).fetch_optional(pool).await)
            .map_err(|e| StoreError::from_sqlx(e, "client"))?
            .ok_or(StoreError::NotFound("client"))
    }

    pub async fn update_client(&self, id: &str, c: &ClientChanges) -> StoreResult<Client> {
        let (set_nurse, nurse) = match &c.named_nurse_id {
            Some(n) => (true, n.clone()),
            None => (false, None),
        };
        let n = execute!(self, pool => sqlx::query(
            "UPDATE clients SET name = COALESCE($2, name), language = COALESCE($3, language), \
             area_id = COALESCE($4, area_id), address = COALESCE($5, address), \
             time_zone = COALESCE($6, time_zone), \
             named_nurse_id = CASE WHEN $7 THEN $8 ELSE named_nurse_id END, \
             consent_auto_answer = COALESCE($9, consent_auto_answer), \
             supervision_class = COALESCE($10, supervision_class), high_risk = COALESCE($11, high_risk), \
             door_instructions = COALESCE($12, door_instructions), care_notes = COALESCE($13, care_notes), \
             relative_name = CASE WHEN $14 THEN $15 ELSE relative_name END, \
             relative_contact = CASE WHEN $16 THEN $17 ELSE relative_contact END, \
             alarm_video = COALESCE($18, alarm_video) WHERE id = $1",
        )
        .bind(id)
        .bind(&c.name)
        .bind(&c.language)
        .bind(&c.area_id)
        .bind(&c.address)
        .bind(&c.time_zone)
        .bind(set_nurse)
        .bind(&nurse)
        .bind(c.consent_auto_answer)
        .bind(&c.supervision_class)
        .bind(c.high_risk)
        .bind(&c.door_instructions)
        .bind(&c.care_notes)
        .bind(c.relative_name.is_some())
        .bind(c.relative_name.clone().flatten())
        .bind(c.relative_contact.is_some())
        .bind(c.relative_contact.clone().flatten())
        .bind(&c.alarm_video)
        .execute(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "client"))?;
        if n == 0 {
            return Err(StoreError::NotFound("client"));
        }
        self.get_client(id).await
    }

    /// The display name of a client, for the terminal's kiosk.
    pub async fn client_name(&self, client_id: &str) -> StoreResult<Option<String>> {
        with_pool!(self, pool => sqlx::query_scalar::<_, String>("SELECT name FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| StoreError::from_sqlx(e, "client"))
    }
}
