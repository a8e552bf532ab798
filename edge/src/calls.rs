//! The terminal serves one call at a time, by priority.
//!
//! [`CallSlot`] is a pure state machine (no I/O, no clock): the link feeds
//! it the hub's offers and ends, the kiosk the client's answers, and each
//! step returns the `(call_id, state)` pairs to report to the hub as
//! `CallUpdate`s.
//!
//! * An offer to an idle terminal rings, or is answered at once when the
//!   hub says it may (`auto_answer`).
//! * An offer of a higher [`CallKind`] than the current call cuts it
//!   (`preempted`) and takes its place; the client is told.
//! * An offer of the same or a lower kind gets `busy`; the current call
//!   goes on.
//! * An offer repeated with the id of the current call, or of a call that
//!   recently finished on the terminal, reports that call's state again
//!   (the hub may resend offers after a reconnect).

use std::collections::VecDeque;

use etahoiva_proto::{CallKind, CallState};

/// How many finished calls are remembered so a repeated offer is not rung again.
const REMEMBERED: usize = 16;

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
#[derive(Debug, Default)]
pub struct CallSlot {
    current: Option<Call>,
    /// Recently finished calls and how they finished, newest last.
    finished: VecDeque<(String, CallState)>,
}

impl CallSlot {
    pub fn new() -> CallSlot {
        CallSlot::default()
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

    /// The hub offers a call; returns the states to report, in order.
    pub fn offer(&mut self, offer: Offer) -> Vec<Update> {
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
        let phase = if offer.auto_answer {
            Phase::Answered
        } else {
            Phase::Ringing
        };
        updates.push((offer.call_id.clone(), phase.state()));
        self.current = Some(Call {
            id: offer.call_id,
            kind: offer.kind,
            caller: offer.caller,
            visit_id: offer.visit_id,
            phase,
            cut,
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
    fn an_idle_terminal_rings_or_answers_by_itself() {
        let mut slot = CallSlot::new();
        assert_eq!(slot.offer(offer("r", Relative, false)), [u("r", Ringing)]);
        assert_eq!(current(&slot), Some(("r", Relative, Phase::Ringing)));
        let call = slot.current().expect("call");
        assert_eq!(call.caller, "caller of r");
        assert_eq!(call.cut, None);

        let mut slot = CallSlot::new();
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true)),
            [u("c", Answered)]
        );
        let call = slot.current().expect("call");
        assert_eq!(call.phase, Phase::Answered);
        assert_eq!(call.visit_id.as_deref(), Some("v1"));
    }

    #[test]
    fn a_scheduled_care_call_preempts_a_relatives_call_in_progress() {
        let mut slot = CallSlot::new();
        slot.offer(offer("r", Relative, false));
        assert_eq!(slot.accept("r"), Ok(vec![u("r", Answered)]));
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true)),
            [u("r", Preempted), u("c", Answered)]
        );
        let call = slot.current().expect("care call");
        assert_eq!((call.id.as_str(), call.phase), ("c", Phase::Answered));
        assert_eq!(call.cut, Some(Relative));
        // The cut call is gone: the client cannot act on it.
        assert_eq!(slot.hang_up("r"), Err(CallError::UnknownCall("r".into())));
    }

    #[test]
    fn a_higher_call_preempts_a_ringing_one_and_may_ring_itself() {
        let mut slot = CallSlot::new();
        slot.offer(offer("r", Relative, false));
        assert_eq!(
            slot.offer(offer("p", Professional, false)),
            [u("r", Preempted), u("p", Ringing)]
        );
        assert_eq!(current(&slot), Some(("p", Professional, Phase::Ringing)));
        assert_eq!(slot.current().and_then(|c| c.cut), Some(Relative));
    }

    #[test]
    fn an_alarm_call_preempts_scheduled_care() {
        let mut slot = CallSlot::new();
        slot.offer(offer("c", ScheduledCare, true));
        assert_eq!(
            slot.offer(offer("a", Alarm, true)),
            [u("c", Preempted), u("a", Answered)]
        );
        assert_eq!(current(&slot), Some(("a", Alarm, Phase::Answered)));
        assert_eq!(slot.current().and_then(|c| c.cut), Some(ScheduledCare));
        // Nothing pre-empts an alarm call, not even another alarm.
        assert_eq!(slot.offer(offer("a2", Alarm, true)), [u("a2", Busy)]);
        assert_eq!(
            slot.offer(offer("c2", ScheduledCare, true)),
            [u("c2", Busy)]
        );
        assert_eq!(current(&slot), Some(("a", Alarm, Phase::Answered)));
    }

    #[test]
    fn a_relatives_call_while_a_nurse_call_is_on_gets_busy() {
        let mut slot = CallSlot::new();
        slot.offer(offer("c", ScheduledCare, true));
        assert_eq!(slot.offer(offer("r", Relative, false)), [u("r", Busy)]);
        assert_eq!(slot.offer(offer("p", Professional, true)), [u("p", Busy)]);
        assert_eq!(current(&slot), Some(("c", ScheduledCare, Phase::Answered)));
        // Same kind while ringing is busy too.
        let mut slot = CallSlot::new();
        slot.offer(offer("r1", Relative, false));
        assert_eq!(slot.offer(offer("r2", Relative, true)), [u("r2", Busy)]);
        assert_eq!(current(&slot), Some(("r1", Relative, Phase::Ringing)));
    }

    #[test]
    fn the_client_accepts_declines_and_hangs_up() {
        let mut slot = CallSlot::new();
        slot.offer(offer("r", Relative, false));
        assert_eq!(slot.accept("r"), Ok(vec![u("r", Answered)]));
        // A second tap on answer changes nothing.
        assert_eq!(slot.accept("r"), Ok(vec![]));
        assert_eq!(slot.decline("r"), Err(CallError::NotRinging));
        assert_eq!(slot.act(ClientAction::HangUp, "r"), Ok(vec![u("r", Ended)]));
        assert_eq!(slot.current(), None);

        slot.offer(offer("p", Professional, false));
        assert_eq!(slot.hang_up("p"), Err(CallError::NotAnswered));
        assert_eq!(
            slot.act(ClientAction::Decline, "p"),
            Ok(vec![u("p", Declined)])
        );
        assert_eq!(slot.current(), None);
        // A free slot rings again.
        assert_eq!(slot.offer(offer("r2", Relative, false)), [u("r2", Ringing)]);
    }

    #[test]
    fn unknown_ids_on_accept_and_decline_are_errors_not_panics() {
        let mut slot = CallSlot::new();
        assert_eq!(slot.accept("nope"), Err(CallError::NoCall));
        assert_eq!(slot.decline("nope"), Err(CallError::NoCall));
        assert_eq!(slot.hang_up("nope"), Err(CallError::NoCall));
        slot.offer(offer("r", Relative, false));
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
        slot.offer(offer("r", Relative, false));
        assert_eq!(slot.offer(offer("r", Relative, false)), [u("r", Ringing)]);
        slot.accept("r").expect("accept");
        // Even with different fields, the same id is the same call.
        assert_eq!(slot.offer(offer("r", Alarm, true)), [u("r", Answered)]);
        assert_eq!(current(&slot), Some(("r", Relative, Phase::Answered)));
        // A pre-empting offer repeated does not cut its own call.
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true)),
            [u("r", Preempted), u("c", Answered)]
        );
        assert_eq!(
            slot.offer(offer("c", ScheduledCare, true)),
            [u("c", Answered)]
        );
        // The cut call offered again is not rung again.
        assert_eq!(slot.offer(offer("r", Relative, false)), [u("r", Preempted)]);
        assert_eq!(current(&slot).map(|c| c.0), Some("c"));
    }

    #[test]
    fn finished_calls_offered_again_report_how_they_finished() {
        let mut slot = CallSlot::new();
        slot.offer(offer("d", Relative, false));
        slot.decline("d").expect("decline");
        assert_eq!(slot.offer(offer("d", Relative, false)), [u("d", Declined)]);
        assert_eq!(slot.current(), None);
        slot.offer(offer("e", Professional, true));
        assert!(slot.end("e"));
        assert_eq!(slot.offer(offer("e", Professional, true)), [u("e", Ended)]);
        // Only a bounded number is remembered.
        for i in 0..REMEMBERED {
            let id = format!("x{i}");
            slot.offer(offer(&id, Relative, false));
            slot.decline(&id).expect("decline");
        }
        assert_eq!(slot.offer(offer("d", Relative, false)), [u("d", Ringing)]);
    }

    #[test]
    fn the_hubs_end_clears_the_slot_and_reports_nothing() {
        let mut slot = CallSlot::new();
        assert!(!slot.end("none"));
        slot.offer(offer("c", ScheduledCare, true));
        assert!(!slot.end("other"));
        assert_eq!(current(&slot).map(|c| c.0), Some("c"));
        assert!(slot.end("c"));
        assert_eq!(slot.current(), None);
        assert_eq!(slot.hang_up("c"), Err(CallError::NoCall));
        assert_eq!(slot.offer(offer("r", Relative, false)), [u("r", Ringing)]);
    }
}
