//! Who gets an alert: by day the central unit's alarm queue, at night the
//! patrol team on duty for the client's area; when nobody acknowledges, the
//! next team and then the supervisors. Pure: the roster and the clock are
//! given.

use jiff::civil::Time;
use jiff::tz::TimeZone;

use crate::store::TeamKind;

/// A team as routing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterTeam {
    pub id: String,
    pub name: String,
    pub kind: TeamKind,
    pub area_id: Option<String>,
    pub escalates_to: Option<String>,
}

/// A period a team is on duty, `[starts_at, ends_at)` in ms since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duty {
    pub team_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// The central unit's service hours in the unit's zone. Equal start and end
/// mean the central unit is closed around the clock.
#[derive(Clone, Debug)]
pub struct ServiceHours {
    pub start: Time,
    pub end: Time,
    pub tz: TimeZone,
}

impl ServiceHours {
    /// Parses "HH:MM" times; "24:00" is the end of the day.
    pub fn parse(start: &str, end: &str, tz: TimeZone) -> Result<ServiceHours, String> {
        Ok(ServiceHours {
            start: parse_time(start)?,
            end: parse_time(end)?,
            tz,
        })
    }

    /// True while the central unit answers alarms.
    pub fn is_day(&self, now_ms: i64) -> bool {
        let t = crate::schedule::ts(now_ms).to_zoned(self.tz.clone()).time();
        if self.start == self.end {
            false
        } else if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            // Hours across midnight, e.g. 20:00-06:00.
            t >= self.start || t < self.end
        }
    }
}

/// Parses "HH:MM" (or "HH:MM:SS"); "24:00" is the last instant of the day.
pub fn parse_time(s: &str) -> Result<Time, String> {
    let s = s.trim();
    if s == "24:00" {
        return Ok(Time::MAX);
    }
    s.parse::<Time>()
        .map_err(|_| format!("{s:?} is not a time of day (HH:MM)"))
}

/// Everything routing needs, loaded from the store and replaced on change.
#[derive(Clone, Debug)]
pub struct Roster {
    pub teams: Vec<RosterTeam>,
    /// Periods on duty that have not long ended.
    pub duty: Vec<Duty>,
    /// Teams with any roster at all, past ones included: a team without
    /// one is on call always, a team whose roster ran out is not.
    pub rostered: std::collections::HashSet<String>,
    pub hours: ServiceHours,
}

/// Where an alert goes, and why (for the timeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub team_id: Option<String>,
    pub detail: String,
}

impl Roster {
    pub fn team(&self, id: &str) -> Option<&RosterTeam> {
        self.teams.iter().find(|t| t.id == id)
    }

    fn on_duty(&self, team_id: &str, now: i64) -> bool {
        self.duty
            .iter()
            .any(|d| d.team_id == team_id && d.starts_at <= now && now < d.ends_at)
    }

    fn central(&self, area: Option<&str>) -> Option<&RosterTeam> {
        let central = || self.teams.iter().filter(|t| t.kind == TeamKind::Central);
        central()
            .find(|t| area.is_some() && t.area_id.as_deref() == area)
            .or_else(|| central().find(|t| t.area_id.is_none()))
            .or_else(|| central().next())
    }

    /// The patrol team of the area on duty now; then one of the area with
    /// no roster at all (always on call); then none.
    pub fn patrol(&self, area: Option<&str>, now: i64) -> Option<&RosterTeam> {
        let area = area?;
        let of_area = || {
            self.teams
                .iter()
                .filter(move |t| t.kind == TeamKind::Patrol && t.area_id.as_deref() == Some(area))
        };
        of_area()
            .find(|t| self.on_duty(&t.id, now))
            .or_else(|| of_area().find(|t| !self.rostered.contains(&t.id)))
    }

    /// The first team for a new alert of a client in `area`.
    pub fn primary(&self, area: Option<&str>, now: i64) -> Route {
        let area_name = area.unwrap_or("-");
        if self.hours.is_day(now) {
            if let Some(t) = self.central(area) {
                return Route {
                    team_id: Some(t.id.clone()),
                    detail: format!("service hours: to {}", t.name),
                };
            }
        }
        if let Some(t) = self.patrol(area, now) {
            return Route {
                team_id: Some(t.id.clone()),
                detail: format!("to the patrol of the area on duty: {}", t.name),
            };
        }
        // Nobody on duty for the area: any patrol on duty, then the central unit.
        if let Some(t) = self
            .teams
            .iter()
            .find(|t| t.kind == TeamKind::Patrol && self.on_duty(&t.id, now))
        {
            return Route {
                team_id: Some(t.id.clone()),
                detail: format!("no patrol on duty for area {area_name}: to {}", t.name),
            };
        }
        match self.central(area) {
            Some(t) => Route {
                team_id: Some(t.id.clone()),
                detail: format!("no patrol on duty for area {area_name}: to {}", t.name),
            },
            None => Route {
                team_id: None,
                detail: "no team configured: to the supervisors".into(),
            },
        }
    }

    /// The team that gets an alert `team_id` did not acknowledge: its
    /// configured next team, else another patrol on duty, else the central
    /// unit. None when there is nobody else (the supervisors come next).
    pub fn next(&self, team_id: Option<&str>, area: Option<&str>, now: i64) -> Route {
        let current = team_id.and_then(|id| self.team(id));
        if let Some(next) = current
            .and_then(|t| t.escalates_to.as_deref())
            .and_then(|id| self.team(id))
        {
            return Route {
                team_id: Some(next.id.clone()),
                detail: format!("not acknowledged: to {}", next.name),
            };
        }
        let other_patrol = self.teams.iter().find(|t| {
            t.kind == TeamKind::Patrol && Some(t.id.as_str()) != team_id && self.on_duty(&t.id, now)
        });
        if let Some(t) = other_patrol {
            return Route {
                team_id: Some(t.id.clone()),
                detail: format!("not acknowledged: to the patrol on duty {}", t.name),
            };
        }
        match self.central(area) {
            Some(t) if Some(t.id.as_str()) != team_id => Route {
                team_id: Some(t.id.clone()),
                detail: format!("not acknowledged: to {}", t.name),
            },
            _ => Route {
                team_id: None,
                detail: "not acknowledged and no other team: to the supervisors".into(),
            },
        }
    }

    /// A patrol team of the area whether on duty or not, else any patrol:
    /// where an unclear situation goes when no roster has anybody on duty.
    pub fn any_patrol(&self, area: Option<&str>) -> Option<&RosterTeam> {
        let patrols = || self.teams.iter().filter(|t| t.kind == TeamKind::Patrol);
        patrols()
            .find(|t| area.is_some() && t.area_id.as_deref() == area)
            .or_else(|| patrols().next())
    }

    /// The patrol a dispatch goes to: the one named, or the area's on duty.
    pub fn dispatch(
        &self,
        wanted: Option<&str>,
        area: Option<&str>,
        now: i64,
    ) -> Result<&RosterTeam, String> {
        match wanted {
            Some(id) => match self.team(id) {
                Some(t) if t.kind == TeamKind::Patrol => Ok(t),
                Some(t) => Err(format!("{} is not a patrol team", t.name)),
                None => Err(format!("team {id} not found")),
            },
            None => self
                .patrol(area, now)
                .or_else(|| {
                    self.teams
                        .iter()
                        .find(|t| t.kind == TeamKind::Patrol && self.on_duty(&t.id, now))
                })
                .ok_or_else(|| "no patrol team is on duty; choose a team".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn team(id: &str, kind: TeamKind, area: Option<&str>, next: Option<&str>) -> RosterTeam {
        RosterTeam {
            id: id.into(),
            name: id.to_uppercase(),
            kind,
            area_id: area.map(str::to_string),
            escalates_to: next.map(str::to_string),
        }
    }

    /// 2026-11-23 at `hour` in Helsinki (UTC+2 in November).
    fn at(hour: i64) -> i64 {
        jiff::civil::date(2026, 11, 23)
            .at(0, 0, 0, 0)
            .to_zoned(TimeZone::get("Europe/Helsinki").unwrap())
            .unwrap()
            .timestamp()
            .as_millisecond()
            + hour * H
    }

    fn roster() -> Roster {
        Roster {
            teams: vec![
                team("central", TeamKind::Central, None, None),
                team("lesti", TeamKind::Patrol, Some("a-lesti"), Some("perho")),
                team("perho", TeamKind::Patrol, Some("a-perho"), None),
                team("lesti2", TeamKind::Patrol, Some("a-lesti"), None),
            ],
            duty: vec![
                // Tonight's rosters: lesti 21-07, perho 21-07, lesti2 on tomorrow night only.
                Duty {
                    team_id: "lesti".into(),
                    starts_at: at(21),
                    ends_at: at(31),
                },
                Duty {
                    team_id: "perho".into(),
                    starts_at: at(21),
                    ends_at: at(31),
                },
                Duty {
                    team_id: "lesti2".into(),
                    starts_at: at(45),
                    ends_at: at(55),
                },
            ],
            rostered: ["lesti", "perho", "lesti2"]
                .into_iter()
                .map(String::from)
                .collect(),
            hours: ServiceHours::parse("07:00", "21:00", TimeZone::get("Europe/Helsinki").unwrap())
                .unwrap(),
        }
    }

    #[test]
    fn day_goes_to_the_central_unit_night_to_the_area_patrol() {
        let r = roster();
        assert_eq!(
            r.primary(Some("a-lesti"), at(10)).team_id.as_deref(),
            Some("central")
        );
        assert_eq!(
            r.primary(Some("a-lesti"), at(27)).team_id.as_deref(),
            Some("lesti")
        );
        assert_eq!(
            r.primary(Some("a-perho"), at(27)).team_id.as_deref(),
            Some("perho")
        );
        // 21:00 sharp is night; 07:00 sharp is day.
        assert_eq!(
            r.primary(Some("a-perho"), at(21)).team_id.as_deref(),
            Some("perho")
        );
        assert_eq!(
            r.primary(Some("a-perho"), at(31)).team_id.as_deref(),
            Some("central")
        );
        // Tomorrow night lesti2 is on duty, lesti is not.
        assert_eq!(
            r.primary(Some("a-lesti"), at(50)).team_id.as_deref(),
            Some("lesti2")
        );
    }

    #[test]
    fn nobody_on_duty_falls_back_and_says_so() {
        let r = roster();
        // 03:00 tonight+1 (at 51 h) perho is not on duty; lesti2 is.
        let route = r.primary(Some("a-perho"), at(51));
        assert_eq!(route.team_id.as_deref(), Some("lesti2"));
        assert!(
            route.detail.contains("no patrol on duty"),
            "{}",
            route.detail
        );
        // An unknown area at night with patrols on duty: some patrol on duty.
        assert!(r.primary(None, at(27)).team_id.is_some());
    }

    #[test]
    fn escalation_follows_the_chain_then_the_supervisors() {
        let r = roster();
        let now = at(27);
        assert_eq!(
            r.next(Some("lesti"), Some("a-lesti"), now)
                .team_id
                .as_deref(),
            Some("perho")
        );
        // perho has no next team: another patrol on duty, i.e. lesti.
        assert_eq!(
            r.next(Some("perho"), Some("a-perho"), now)
                .team_id
                .as_deref(),
            Some("lesti")
        );
        // By day the central unit has nobody after it.
        assert_eq!(
            r.next(Some("central"), Some("a-lesti"), at(10)).team_id,
            None
        );
    }

    #[test]
    fn service_hours_across_midnight_and_closed() {
        let tz = TimeZone::get("Europe/Helsinki").unwrap();
        let h = ServiceHours::parse("20:00", "06:00", tz.clone()).unwrap();
        assert!(h.is_day(at(23)) && h.is_day(at(29)) && !h.is_day(at(12)));
        let closed = ServiceHours::parse("00:00", "00:00", tz.clone()).unwrap();
        assert!(!closed.is_day(at(12)));
        let always = ServiceHours::parse("00:00", "24:00", tz).unwrap();
        assert!(always.is_day(at(3)) && always.is_day(at(23)));
        assert!(parse_time("25:00").is_err());
    }

    #[test]
    fn dispatch_picks_the_area_patrol_or_the_named_one() {
        let r = roster();
        assert_eq!(
            r.dispatch(None, Some("a-perho"), at(27)).unwrap().id,
            "perho"
        );
        assert_eq!(r.dispatch(Some("lesti"), None, at(10)).unwrap().id, "lesti");
        assert!(r.dispatch(Some("central"), None, at(10)).is_err());
        assert!(r.dispatch(Some("nope"), None, at(10)).is_err());
    }
}
