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
}

const CLIENT_COLUMNS: &str = "id, name, language, area_id, address, time_zone, named_nurse_id, consent_auto_answer, created_at";

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
        })
    }

    pub async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        let (teams, members) = with_pool!(self, pool => async {
            let teams = sqlx::query_as::<_, (String, String, String, Option<String>)>(
                "SELECT id, name, kind, area_id FROM teams ORDER BY name",
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
            .map(|(id, name, kind, area_id)| {
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
                })
            })
            .collect()
    }

    pub async fn create_client(&self, new: NewClient) -> StoreResult<Client> {
        let client = Client {
            id: new_id(),
            name: new.name,
            language: new.language,
            area_id: new.area_id,
            address: new.address,
            time_zone: new.time_zone.unwrap_or_else(|| "Europe/Helsinki".into()),
            named_nurse_id: new.named_nurse_id,
            consent_auto_answer: new.consent_auto_answer,
            created_at: now_ms(),
        };
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
        with_pool!(self, pool => sqlx::query_as::<_, Client>(
            "SELECT id, name, language, area_id, address, time_zone, named_nurse_id, consent_auto_answer, created_at \
             FROM clients ORDER BY name",
        )
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
             consent_auto_answer = COALESCE($9, consent_auto_answer) WHERE id = $1",
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
