//! The terminal serves one call at a time, by priority.
//!
//! [`CallSlot`] is a pure state machine (no I/O, no clock): the link feeds
//! it the hub's offers and ends, the kiosk the client's answers, and each
//! step returns the `(call_id, state)` pairs to report to the hub as
//! `CallUpdate`s.
//!
//! * An offer to an idle terminal rings. When the hub says the terminal
//!   may answer by itself (`auto_answer`), an alarm call is answered at
//!   once (the alarm's handler must see the home without delay); any other
//!   call rings with a deadline ([`Call::auto_answer_at`], after a countdown
//!   the client sees on the kiosk) and the agent answers it then, unless the
//!   client has answered or declined it first.
//! * An offer of a higher [`CallKind`] than the current call cuts it
//!   (`preempted`) and takes its place; the client is told.
//! * An offer of the same or a lower kind gets `busy`; the current call
//!   goes on.
//! * An offer repeated with the id of the current call, or of a call that
//!   recently finished on the terminal, reports that call's state again
//!   (the hub may resend offers after a reconnect).

use std::collections::VecDeque;
use std::time::Duration;

use etahoiva_proto::{CallKind, CallState};

/// How many finished calls are remembered so a repeated offer is not rung again.
const REMEMBERED: usize = 16;

/// How long a call the terminal may answer by itself rings first, so the
/// client sees who calls and may decline: the default of the terminal's
/// `settings.auto_answer.countdown_secs`.
pub const AUTO_ANSWER_COUNTDOWN: Duration = Duration::from_secs(10);

/// A call the hub offers (the fields of `HubToEdge::CallOffer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub call_id: String,
    pub kind: CallKind,
    /// Who calls, as the client sees it.
    pub caller: String,
    pub visit_id: Option<String>,
    pub auto_answer: bool,
}

/// Where the current call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Ringing,
    Answered,
}

impl Phase {
    pub fn state(self) -> CallState {
        match self {
            Phase::Ringing => CallState::Ringing,
            Phase::Answered => CallState::Answered,
        }
    }
}

/// The call the terminal serves now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    pub kind: CallKind,
    pub caller: String,
    pub visit_id: Option<String>,
    pub phase: Phase,
    /// The kind of the call this one cut, if it pre-empted one.
    pub cut: Option<CallKind>,
    /// When the ringing call answers by itself, milliseconds since the
    /// Unix epoch; `None` when only the client answers it (and once it is
    /// answered).
    pub auto_answer_at: Option<i64>,
}

/// What the client did with a call on the kiosk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAction {
    Accept,
    Decline,
    HangUp,
}

/// A client action that does not fit the current call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no call is on")]
    NoCall,
    #[error("call {0} is not the current call")]
    UnknownCall(String),
    #[error("the call is not ringing")]
    NotRinging,
    #[error("the call has not been answered")]
    NotAnswered,
}

/// A state to report to the hub for a call.
pub type Update = (String, CallState);

/// The terminal's one call place.
#[derive(Debug)]
pub struct CallSlot {
    current: Option<Call>,
    /// Recently finished calls and how they finished, newest last.
    finished: VecDeque<(String, CallState)>,
    /// How long a call that answers by itself rings first, in milliseconds.
    countdown_ms: i64,
}

impl Default for CallSlot {
    fn default() -> Self {
        CallSlot::new()
    }
}

impl CallSlot {
    /// An empty slot counting down [`AUTO_ANSWER_COUNTDOWN`] before answering by itself.
    pub fn new() -> CallSlot {
        CallSlot {
            current: None,
            finished: VecDeque::new(),
            countdown_ms: AUTO_ANSWER_COUNTDOWN.as_millis() as i64,
        }
    }

    /// Sets how long calls offered from now on ring before they answer by
    /// themselves; a call counting down already keeps its deadline.
    pub fn set_countdown(&mut self, countdown: Duration) {
        self.countdown_ms = i64::try_from(countdown.as_millis()).unwrap_or(i64::MAX);
    }

    /// The call served now, if any.
    pub fn current(&self) -> Option<&Call> {
        self.current.as_ref()
    }

    fn remember(&mut self, id: String, state: CallState) {
        self.finished.retain(|(known, _)| *known != id);
        if self.finished.len() == REMEMBERED {
            self.finished.pop_front();
        }
        self.finished.push_back((id, state));
    }

    fn finished_state(&self, id: &str) -> Option<CallState> {
        self.finished
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, state)| *state)
    }

    /// The hub offers a call at `now_ms` (milliseconds since the Unix
    /// epoch); returns the states to report, in order.
    pub fn offer(&mut self, offer: Offer, now_ms: i64) -> Vec<Update> {
        if let Some(current) = &self.current {
            if current.id == offer.call_id {
                return vec![(current.id.clone(), current.phase.state())];
            }
        }
        if let Some(state) = self.finished_state(&offer.call_id) {
            return vec![(offer.call_id, state)];
        }
        let mut updates = Vec::with_capacity(2);
        let mut cut = None;
        if let Some(current) = &self.current {
            if current.kind >= offer.kind {
                return vec![(offer.call_id, CallState::Busy)];
            }
            cut = Some(current.kind);
            let old = current.id.clone();
            updates.push((old.clone(), CallState::Preempted));
            self.remember(old, CallState::Preempted);
        }
        let (phase, auto_answer_at) = match (offer.auto_answer, offer.kind) {
            (false, _) => (Phase::Ringing, None),
            (true, CallKind::Alarm) => (Phase::Answered, None),
            (true, _) => (
                Phase::Ringing,
                Some(now_ms.saturating_add(self.countdown_ms)),
            ),
        };
        updates.push((offer.call_id.clone(), phase.state()));
        self.current = Some(Call {
            id: offer.call_id,
            kind: offer.kind,
            caller: offer.caller,
            visit_id: offer.visit_id,
            phase,
            cut,
            auto_answer_at,
        });
        updates
    }

    fn current_named(&self, call_id: &str) -> Result<&Call, CallError> {
        match &self.current {
            None => Err(CallError::NoCall),
            Some(call) if call.id == call_id => Ok(call),
            Some(_) => Err(CallError::UnknownCall(call_id.to_string())),
        }
    }

    /// Applies what the client did on the kiosk.
    pub fn act(&mut self, action: ClientAction, call_id: &str) -> Result<Vec<Update>, CallError> {
        match action {
            ClientAction::Accept => self.accept(call_id),
            ClientAction::Decline => self.decline(call_id),
            ClientAction::HangUp => self.hang_up(call_id),
        }
    }

    /// The client answers the ringing call. Answering it again reports nothing.
    pub fn accept(&mut self, call_id: &str) -> Result<Vec<Update>, CallError> {
        let call = self.current_named(call_id)?;
        if call.phase == Phase::Answered {
            return Ok(Vec::new());
        }
        if let Some(call) = self.current.as_mut() {
            call.phase = Phase::Answered;
            call.auto_answer_at = None;
        }
        Ok(vec![(call_id.to_string(), CallState::Answered)])
    }

    /// The client declines the ringing call; the slot is free again.
    pub fn decline(&mut self, call_id: &str) -> Result<Vec<Update>, CallError> {
        if self.current_named(call_id)?.phase != Phase::Ringing {
            return Err(CallError::NotRinging);
        }
        self.finish(call_id, CallState::Declined)
    }

    /// The client ends the answered call; the slot is free again.
    pub fn hang_up(&mut self, call_id: &str) -> Result<Vec<Update>, CallError> {
        if self.current_named(call_id)?.phase != Phase::Answered {
            return Err(CallError::NotAnswered);
        }
        self.finish(call_id, CallState::Ended)
    }

    fn finish(&mut self, call_id: &str, state: CallState) -> Result<Vec<Update>, CallError> {
        self.current = None;
        self.remember(call_id.to_string(), state);
        Ok(vec![(call_id.to_string(), state)])
    }

    /// The hub ended the call: the slot is cleared if it is the current
    /// call, and nothing is reported. Returns whether it was.
    pub fn end(&mut self, call_id: &str) -> bool {
        if self.current.as_ref().is_some_and(|c| c.id == call_id) {
            self.current = None;
            self.remember(call_id.to_string(), CallState::Ended);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallKind::*;
    use CallState::*;

    /// The time of the offers, milliseconds since the Unix epoch.
    const NOW: i64 = 1_790_000_000_000;
    const COUNTDOWN_MS: i64 = AUTO_ANSWER_COUNTDOWN.as_millis() as i64;

    fn offer(id: &str, kind: CallKind, auto_answer: bool) -> Offer {
        Offer {
            call_id: id.into(),
            kind,
            caller: format!("caller of {id}"),
            visit_id: (kind == ScheduledCare).then(|| "v1".to_string()),
            auto_answer,
        }
    }

    fn u(id: &str, state: CallState) -> Update {
        (id.to_string(), state)
    }

    fn current(slot: &CallSlot) -> Option<(&str, CallKind, Phase)> {
        slot.current().map(|c| (c.id.as_str(), c.kind, c.phase))
    }

    #[test]
    fn an_idle_terminal_rings() {
        let mut slot = CallSlot::new();
        assert_eq!(
            slot.offer(offer("r", Relative, false), NOW),
            [u("r", Ringing)]
        );
        assert_eq!(current(&slot), Some(("r", Relative, Phase::Ringing)));
        let call = slot.current().expect("call");
        assert_eq!(call.caller, "caller of r");
        assert_eq!(call.cut, None);
        assert_eq!(call.auto_answer_at, None, "only the client answers it");
    }

    #[test]
    fn a_scheduled_care_call_that_may_answer_by_itself_rings_with_a_deadline() {
        let mut slot = CallSlot::new();
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true), NOW),
            [u("c", Ringing)]
        );
        let call = slot.current().expect("call");
        assert_eq!(call.phase, Phase::Ringing);
        assert_eq!(call.visit_id.as_deref(), Some("v1"));
        assert_eq!(call.auto_answer_at, Some(NOW + 10_000));
        // Offered again (after a reconnect) it keeps its deadline.
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true), NOW + 4_000),
            [u("c", Ringing)]
        );
        assert_eq!(
            slot.current().and_then(|c| c.auto_answer_at),
            Some(NOW + 10_000)
        );
        // Answered, by the client or by the agent at the deadline: no deadline left.
        assert_eq!(slot.accept("c"), Ok(vec![u("c", Answered)]));
        let call = slot.current().expect("call");
        assert_eq!((call.phase, call.auto_answer_at), (Phase::Answered, None));

        // The countdown is the terminal's setting.
        let mut slot = CallSlot::new();
        slot.set_countdown(Duration::from_secs(3));
        slot.offer(offer("c", ScheduledCare, true), NOW);
        assert_eq!(
            slot.current().and_then(|c| c.auto_answer_at),
            Some(NOW + 3_000)
        );
    }

    #[test]
    fn the_default_countdown_is_the_terminal_settings_default() {
        let settings = etahoiva_firmware_config::TerminalSettings::default();
        assert_eq!(
            AUTO_ANSWER_COUNTDOWN,
            Duration::from_secs(settings.auto_answer.countdown_secs.into())
        );
    }

    #[test]
    fn an_alarm_call_that_may_answer_by_itself_answers_at_once() {
        let mut slot = CallSlot::new();
        assert_eq!(slot.offer(offer("a", Alarm, true), NOW), [u("a", Answered)]);
        let call = slot.current().expect("call");
        assert_eq!((call.phase, call.auto_answer_at), (Phase::Answered, None));
        // Without the hub's leave it rings like any call.
        let mut slot = CallSlot::new();
        assert_eq!(slot.offer(offer("a", Alarm, false), NOW), [u("a", Ringing)]);
        assert_eq!(slot.current().and_then(|c| c.auto_answer_at), None);
    }

    #[test]
    fn a_higher_call_during_the_countdown_preempts_it() {
        let mut slot = CallSlot::new();
        slot.offer(offer("c", ScheduledCare, true), NOW);
        assert_eq!(
            slot.offer(offer("a", Alarm, true), NOW + 2_000),
            [u("c", Preempted), u("a", Answered)]
        );
        let call = slot.current().expect("alarm call");
        assert_eq!(call.cut, Some(ScheduledCare));
        assert_eq!(call.auto_answer_at, None);
        // The cut call cannot be answered any more, by the agent or the client.
        assert_eq!(slot.accept("c"), Err(CallError::UnknownCall("c".into())));
        assert_eq!(current(&slot), Some(("a", Alarm, Phase::Answered)));
        // A lower call during the countdown gets busy; the countdown goes on.
        let mut slot = CallSlot::new();
        slot.offer(offer("c", ScheduledCare, true), NOW);
        assert_eq!(slot.offer(offer("r", Relative, false), NOW), [u("r", Busy)]);
        assert_eq!(
            slot.current().map(|c| (c.id.as_str(), c.auto_answer_at)),
            Some(("c", Some(NOW + COUNTDOWN_MS)))
        );
    }

    #[test]
    fn declining_during_the_countdown_ends_the_call() {
        let mut slot = CallSlot::new();
        slot.offer(offer("c", ScheduledCare, true), NOW);
        assert_eq!(slot.decline("c"), Ok(vec![u("c", Declined)]));
        assert_eq!(slot.current(), None);
        // Nothing is left to answer at the deadline.
        assert_eq!(slot.accept("c"), Err(CallError::NoCall));
        // The hub offering it again hears it was declined; it does not ring.
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true), NOW + COUNTDOWN_MS),
            [u("c", Declined)]
        );
        assert_eq!(slot.current(), None);
    }

    #[test]
    fn a_scheduled_care_call_preempts_a_relatives_call_in_progress() {
        let mut slot = CallSlot::new();
        slot.offer(offer("r", Relative, false), NOW);
        assert_eq!(slot.accept("r"), Ok(vec![u("r", Answered)]));
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true), NOW),
            [u("r", Preempted), u("c", Ringing)]
        );
        let call = slot.current().expect("care call");
        assert_eq!((call.id.as_str(), call.phase), ("c", Phase::Ringing));
        assert_eq!(call.auto_answer_at, Some(NOW + COUNTDOWN_MS));
        assert_eq!(call.cut, Some(Relative));
        // The cut call is gone: the client cannot act on it.
        assert_eq!(slot.hang_up("r"), Err(CallError::UnknownCall("r".into())));
    }

    #[test]
    fn a_higher_call_preempts_a_ringing_one_and_may_ring_itself() {
        let mut slot = CallSlot::new();
        slot.offer(offer("r", Relative, false), NOW);
        assert_eq!(
            slot.offer(offer("p", Professional, false), NOW),
            [u("r", Preempted), u("p", Ringing)]
        );
        assert_eq!(current(&slot), Some(("p", Professional, Phase::Ringing)));
        assert_eq!(slot.current().and_then(|c| c.cut), Some(Relative));
    }

    #[test]
    fn an_alarm_call_preempts_scheduled_care() {
        let mut slot = CallSlot::new();
        slot.offer(offer("c", ScheduledCare, true), NOW);
        assert_eq!(
            slot.offer(offer("a", Alarm, true), NOW),
            [u("c", Preempted), u("a", Answered)]
        );
        assert_eq!(current(&slot), Some(("a", Alarm, Phase::Answered)));
        assert_eq!(slot.current().and_then(|c| c.cut), Some(ScheduledCare));
        // Nothing pre-empts an alarm call, not even another alarm.
        assert_eq!(slot.offer(offer("a2", Alarm, true), NOW), [u("a2", Busy)]);
        assert_eq!(
            slot.offer(offer("c2", ScheduledCare, true), NOW),
            [u("c2", Busy)]
        );
        assert_eq!(current(&slot), Some(("a", Alarm, Phase::Answered)));
    }

    #[test]
    fn a_relatives_call_while_a_nurse_call_is_on_gets_busy() {
        let mut slot = CallSlot::new();
        slot.offer(offer("c", ScheduledCare, true), NOW);
        assert_eq!(slot.offer(offer("r", Relative, false), NOW), [u("r", Busy)]);
        assert_eq!(
            slot.offer(offer("p", Professional, true), NOW),
            [u("p", Busy)]
        );
        assert_eq!(current(&slot), Some(("c", ScheduledCare, Phase::Ringing)));
        slot.accept("c").expect("answered");
        assert_eq!(slot.offer(offer("r", Relative, false), NOW), [u("r", Busy)]);
        assert_eq!(current(&slot), Some(("c", ScheduledCare, Phase::Answered)));
        // Same kind while ringing is busy too.
        let mut slot = CallSlot::new();
        slot.offer(offer("r1", Relative, false), NOW);
        assert_eq!(
            slot.offer(offer("r2", Relative, true), NOW),
            [u("r2", Busy)]
        );
        assert_eq!(current(&slot), Some(("r1", Relative, Phase::Ringing)));
    }

    #[test]
    fn the_client_accepts_declines_and_hangs_up() {
        let mut slot = CallSlot::new();
        slot.offer(offer("r", Relative, false), NOW);
        assert_eq!(slot.accept("r"), Ok(vec![u("r", Answered)]));
        // A second tap on answer changes nothing.
        assert_eq!(slot.accept("r"), Ok(vec![]));
        assert_eq!(slot.decline("r"), Err(CallError::NotRinging));
        assert_eq!(slot.act(ClientAction::HangUp, "r"), Ok(vec![u("r", Ended)]));
        assert_eq!(slot.current(), None);

        slot.offer(offer("p", Professional, false), NOW);
        assert_eq!(slot.hang_up("p"), Err(CallError::NotAnswered));
        assert_eq!(
            slot.act(ClientAction::Decline, "p"),
            Ok(vec![u("p", Declined)])
        );
        assert_eq!(slot.current(), None);
        // A free slot rings again.
        assert_eq!(
            slot.offer(offer("r2", Relative, false), NOW),
            [u("r2", Ringing)]
        );
    }

    #[test]
    fn unknown_ids_on_accept_and_decline_are_errors_not_panics() {
        let mut slot = CallSlot::new();
        assert_eq!(slot.accept("nope"), Err(CallError::NoCall));
        assert_eq!(slot.decline("nope"), Err(CallError::NoCall));
        assert_eq!(slot.hang_up("nope"), Err(CallError::NoCall));
        slot.offer(offer("r", Relative, false), NOW);
        assert_eq!(
            slot.accept("other"),
            Err(CallError::UnknownCall("other".into()))
        );
        assert_eq!(slot.decline(""), Err(CallError::UnknownCall(String::new())));
        assert_eq!(current(&slot), Some(("r", Relative, Phase::Ringing)));
    }

    #[test]
    fn a_repeated_offer_reports_the_current_state_again() {
        let mut slot = CallSlot::new();
        slot.offer(offer("r", Relative, false), NOW);
        assert_eq!(
            slot.offer(offer("r", Relative, false), NOW),
            [u("r", Ringing)]
        );
        slot.accept("r").expect("accept");
        // Even with different fields, the same id is the same call.
        assert_eq!(slot.offer(offer("r", Alarm, true), NOW), [u("r", Answered)]);
        assert_eq!(current(&slot), Some(("r", Relative, Phase::Answered)));
        // A pre-empting offer repeated does not cut its own call.
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true), NOW),
            [u("r", Preempted), u("c", Ringing)]
        );
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true), NOW),
            [u("c", Ringing)]
        );
        // The cut call offered again is not rung again.
        assert_eq!(
            slot.offer(offer("r", Relative, false), NOW),
            [u("r", Preempted)]
        );
        assert_eq!(current(&slot).map(|c| c.0), Some("c"));
    }

    #[test]
    fn finished_calls_offered_again_report_how_they_finished() {
        let mut slot = CallSlot::new();
        slot.offer(offer("d", Relative, false), NOW);
        slot.decline("d").expect("decline");
        assert_eq!(
            slot.offer(offer("d", Relative, false), NOW),
            [u("d", Declined)]
        );
        assert_eq!(slot.current(), None);
        slot.offer(offer("e", Professional, true), NOW);
        assert!(slot.end("e"));
        assert_eq!(
            slot.offer(offer("e", Professional, true), NOW),
            [u("e", Ended)]
        );
        // Only a bounded number is remembered.
        for i in 0..REMEMBERED {
            let id = format!("x{i}");
            slot.offer(offer(&id, Relative, false), NOW);
            slot.decline(&id).expect("decline");
        }
        assert_eq!(
            slot.offer(offer("d", Relative, false), NOW),
            [u("d", Ringing)]
        );
    }

    #[test]
    fn the_hubs_end_clears_the_slot_and_reports_nothing() {
        let mut slot = CallSlot::new();
        assert!(!slot.end("none"));
        slot.offer(offer("c", ScheduledCare, true), NOW);
        assert!(!slot.end("other"));
        assert_eq!(current(&slot).map(|c| c.0), Some("c"));
        assert!(slot.end("c"));
        assert_eq!(slot.current(), None);
        assert_eq!(slot.hang_up("c"), Err(CallError::NoCall));
        assert_eq!(
            slot.offer(offer("r", Relative, false), NOW),
            [u("r", Ringing)]
        );
    }
}
