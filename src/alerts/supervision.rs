//! Supervision of terminals: how long a terminal may stay silent before
//! its silence is an alert. Each client has a supervision class, as in the
//! Nordic SOS Access protocol (90 s, 180 s, 5 h, 25 h); the class is one
//! step stricter at night, and a client marked high-risk is always
//! supervised at the strictest class.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum SupervisionClass {
    #[serde(rename = "90s")]
    S90,
    #[serde(rename = "180s")]
    S180,
    #[serde(rename = "5h")]
    H5,
    #[serde(rename = "25h")]
    H25,
}

impl SupervisionClass {
    pub const ALL: [SupervisionClass; 4] = [
        SupervisionClass::S90,
        SupervisionClass::S180,
        SupervisionClass::H5,
        SupervisionClass::H25,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SupervisionClass::S90 => "90s",
            SupervisionClass::S180 => "180s",
            SupervisionClass::H5 => "5h",
            SupervisionClass::H25 => "25h",
        }
    }

    pub fn parse(s: &str) -> Option<SupervisionClass> {
        SupervisionClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
    }

    /// The longest silence allowed, in milliseconds.
    pub fn limit_ms(self) -> i64 {
        match self {
            SupervisionClass::S90 => 90_000,
            SupervisionClass::S180 => 180_000,
            SupervisionClass::H5 => 5 * 3_600_000,
            SupervisionClass::H25 => 25 * 3_600_000,
        }
    }

    fn stricter(self) -> SupervisionClass {
        match self {
            SupervisionClass::S90 | SupervisionClass::S180 => SupervisionClass::S90,
            SupervisionClass::H5 => SupervisionClass::S180,
            SupervisionClass::H25 => SupervisionClass::H5,
        }
    }

    /// The class in force: the strictest for a high-risk client, one step
    /// stricter at night.
    pub fn effective(self, high_risk: bool, night: bool) -> SupervisionClass {
        if high_risk {
            SupervisionClass::S90
        } else if night {
            self.stricter()
        } else {
            self
        }
    }
}

/// When a silence started counting: the terminal's last sign of life, but
/// never before this hub started (a hub that was down did not hear anybody,
/// and terminals need a moment to come back).
pub fn silent_since(last_seen: Option<i64>, hub_started: i64) -> i64 {
    last_seen.unwrap_or(hub_started).max(hub_started)
}

/// True when a terminal silent since `since` breaks its class at `now`.
pub fn is_silent(since: i64, now: i64, class: SupervisionClass) -> bool {
    now - since > class.limit_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_tighten_at_night_and_for_high_risk() {
        use SupervisionClass::*;
        assert_eq!(H25.effective(false, false), H25);
        assert_eq!(H25.effective(false, true), H5);
        assert_eq!(H5.effective(false, true), S180);
        assert_eq!(S180.effective(false, true), S90);
        assert_eq!(S90.effective(false, true), S90);
        assert_eq!(H25.effective(true, false), S90);
    }

    #[test]
    fn silence_counts_from_the_last_sign_of_life_or_the_hub_start() {
        let started = 1_000_000;
        assert_eq!(silent_since(Some(500), started), started);
        assert_eq!(silent_since(Some(2_000_000), started), 2_000_000);
        assert_eq!(silent_since(None, started), started);
        assert!(!is_silent(0, 90_000, SupervisionClass::S90));
        assert!(is_silent(0, 90_001, SupervisionClass::S90));
    }

    #[test]
    fn class_names_round_trip() {
        for c in SupervisionClass::ALL {
            assert_eq!(SupervisionClass::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert_eq!(SupervisionClass::parse("1h"), None);
    }
}
