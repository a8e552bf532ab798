//! Messages for the client from the hub (`HubToEdge::Notice`), already in
//! the client's language: shown on the kiosk until the client presses OK.
//!
//! [`NoticeBoard`] is a pure state machine. It keeps the latest
//! [`MAX_SHOWN`] notices; older ones drop off. Notices the client
//! dismissed (or that dropped off) are remembered by id, so the hub
//! sending one again, e.g. after a reconnect, does not bring it back.
//! The board is saved in `state/notices.json` after every change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the file in the agent's state directory.
pub const NOTICES_FILE: &str = "notices.json";
/// How many notices the kiosk shows at most.
pub const MAX_SHOWN: usize = 5;
/// How many dismissed ids are remembered.
const REMEMBERED: usize = 64;
/// Notice ids are the hub's; anything far longer is not one.
pub const MAX_ID_BYTES: usize = 128;
/// Longest text shown; the rest is cut.
const MAX_TEXT_CHARS: usize = 600;

/// Where the board is saved in `state_dir`.
pub fn notices_file(state_dir: &Path) -> PathBuf {
    state_dir.join(NOTICES_FILE)
}

/// One notice on the kiosk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    pub text: String,
    /// Terminal clock when it arrived, milliseconds since the Unix epoch.
    pub received_at: i64,
}

/// What became of a notice given to [`NoticeBoard::receive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    Added,
    /// Already shown; its text changed.
    Updated,
    /// Already shown as it is.
    Unchanged,
    /// The client dismissed it before (or it dropped off); not shown again.
    Dismissed,
    /// Empty or overlong id, or no text.
    Invalid,
}

impl Received {
    pub fn changed(self) -> bool {
        matches!(self, Received::Added | Received::Updated)
    }
}

/// What became of the client's OK on a notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dismissed {
    Dismissed,
    /// Pressed twice, or on two screens: already gone.
    AlreadyDismissed,
    Unknown,
}

/// The notices on the kiosk and the ids of those already dismissed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeBoard {
    /// Oldest first.
    shown: Vec<Notice>,
    /// Oldest first.
    dismissed: Vec<String>,
}

/// The text as shown: without control characters (line breaks kept),
/// trimmed, bounded.
fn clean(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

impl NoticeBoard {
    /// Takes a notice arriving at `now_ms` on the terminal's clock.
    pub fn receive(&mut self, id: &str, text: &str, now_ms: i64) -> Received {
        let text = clean(text);
        if id.is_empty() || id.len() > MAX_ID_BYTES || text.is_empty() {
            return Received::Invalid;
        }
        if self.dismissed.iter().any(|d| d == id) {
            return Received::Dismissed;
        }
        if let Some(known) = self.shown.iter_mut().find(|n| n.id == id) {
            if known.text == text {
                return Received::Unchanged;
            }
            known.text = text;
            return Received::Updated;
        }
        self.shown.push(Notice {
            id: id.to_string(),
            text,
            received_at: now_ms,
        });
        while self.shown.len() > MAX_SHOWN {
            let dropped = self.shown.remove(0);
            self.remember(dropped.id);
        }
        Received::Added
    }

    /// The client pressed OK on the notice `id`.
    pub fn dismiss(&mut self, id: &str) -> Dismissed {
        match self.shown.iter().position(|n| n.id == id) {
            Some(i) => {
                let notice = self.shown.remove(i);
                self.remember(notice.id);
                Dismissed::Dismissed
            }
            None if self.dismissed.iter().any(|d| d == id) => Dismissed::AlreadyDismissed,
            None => Dismissed::Unknown,
        }
    }

    fn remember(&mut self, id: String) {
        self.dismissed.push(id);
        if self.dismissed.len() > REMEMBERED {
            let excess = self.dismissed.len() - REMEMBERED;
            self.dismissed.drain(..excess);
        }
    }

    /// The notices to show, newest first.
    pub fn shown(&self) -> Vec<Notice> {
        self.shown.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(board: &NoticeBoard) -> Vec<String> {
        board.shown().into_iter().map(|n| n.id).collect()
    }

    #[test]
    fn notices_are_shown_newest_first_until_dismissed() {
        let mut board = NoticeBoard::default();
        assert_eq!(
            board.receive("n1", "Hoitoyksikölle on kerrottu katkoksesta.", 10),
            Received::Added
        );
        assert_eq!(board.receive("n2", "Toinen viesti", 20), Received::Added);
        assert_eq!(ids(&board), ["n2", "n1"]);
        assert_eq!(board.shown()[1].received_at, 10);
        assert_eq!(board.dismiss("n1"), Dismissed::Dismissed);
        assert_eq!(ids(&board), ["n2"]);
        assert_eq!(board.dismiss("n1"), Dismissed::AlreadyDismissed);
        assert_eq!(board.dismiss("never"), Dismissed::Unknown);
        // Sent again (after a reconnect): it stays dismissed.
        assert_eq!(
            board.receive("n1", "Hoitoyksikölle on kerrottu katkoksesta.", 30),
            Received::Dismissed
        );
        assert_eq!(ids(&board), ["n2"]);
        // Sent again while shown: unchanged, or its text corrected in place.
        assert_eq!(
            board.receive("n2", "Toinen viesti", 40),
            Received::Unchanged
        );
        assert_eq!(
            board.receive("n2", "Toinen viesti, korjattu", 40),
            Received::Updated
        );
        assert_eq!(board.shown()[0].text, "Toinen viesti, korjattu");
        assert_eq!(board.shown()[0].received_at, 20);
    }

    #[test]
    fn only_the_latest_five_are_kept() {
        let mut board = NoticeBoard::default();
        for i in 0..7 {
            board.receive(&format!("n{i}"), "teksti", i);
        }
        assert_eq!(ids(&board), ["n6", "n5", "n4", "n3", "n2"]);
        // One that dropped off does not push back in when sent again.
        assert_eq!(board.receive("n0", "teksti", 8), Received::Dismissed);
        assert_eq!(ids(&board).len(), MAX_SHOWN);
    }

    #[test]
    fn texts_are_cleaned_and_bad_notices_refused() {
        let mut board = NoticeBoard::default();
        assert_eq!(board.receive("", "teksti", 1), Received::Invalid);
        assert_eq!(
            board.receive(&"x".repeat(MAX_ID_BYTES + 1), "teksti", 1),
            Received::Invalid
        );
        assert_eq!(board.receive("n1", " \u{7}\t ", 1), Received::Invalid);
        assert_eq!(
            board.receive("n1", "  Rivi 1\u{1b}[31m\nRivi <2>  ", 1),
            Received::Added
        );
        assert_eq!(board.shown()[0].text, "Rivi 1[31m\nRivi <2>");
        board.receive("n2", &"ä".repeat(2 * MAX_TEXT_CHARS), 1);
        assert_eq!(board.shown()[0].text.chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn dismissed_ids_are_remembered_within_a_bound() {
        let mut board = NoticeBoard::default();
        for i in 0..(REMEMBERED + 10) {
            let id = format!("n{i}");
            board.receive(&id, "teksti", 1);
            board.dismiss(&id);
        }
        assert_eq!(board.dismissed.len(), REMEMBERED);
        assert_eq!(board.receive("n10", "teksti", 2), Received::Dismissed);
        // The very oldest are forgotten.
        assert_eq!(board.receive("n0", "teksti", 2), Received::Added);
    }

    #[test]
    fn the_board_round_trips_through_json() {
        let mut board = NoticeBoard::default();
        board.receive("n1", "teksti", 1);
        board.receive("n2", "toinen", 2);
        board.dismiss("n1");
        let text = serde_json::to_string(&board).expect("json");
        let mut back: NoticeBoard = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, board);
        assert_eq!(back.dismiss("n1"), Dismissed::AlreadyDismissed);
    }
}
