//! Pure forwarding rules: how a packet's numbers are rewritten towards one
//! receiver, and how often a source is asked for a key frame.

use std::time::{Duration, Instant};

/// Keeps one outgoing stream's sequence numbers and timestamps contiguous
/// when its source changes (a participant re-joins, a call is replaced):
/// `out = in + offset`, the offset chosen at each change so that the
/// receiver sees the next number after the last it got. Gaps in the input
/// stay gaps, so the receiver's NACKs still map back to the source.
#[derive(Clone, Debug, Default)]
pub struct SeqRewriter {
    source: Option<u64>,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: Option<u16>,
    last_ts: u32,
}

impl SeqRewriter {
    /// The outgoing (sequence number, timestamp) of a packet from `source`.
    /// `ts_step` is one frame's worth of timestamp, the gap left at a change.
    pub fn rewrite(&mut self, source: u64, seq: u16, ts: u32, ts_step: u32) -> (u16, u32) {
        if self.source != Some(source) {
            match self.last_seq {
                Some(last) => {
                    self.seq_offset = last.wrapping_add(1).wrapping_sub(seq);
                    self.ts_offset = self.last_ts.wrapping_add(ts_step).wrapping_sub(ts);
                }
                None => {
                    self.seq_offset = 0;
                    self.ts_offset = 0;
                }
            }
            self.source = Some(source);
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        // Remember the newest packet (in RTP's wrapping order), not a late one.
        let newer = self
            .last_seq
            .is_none_or(|last| out_seq.wrapping_sub(last) < 0x8000);
        if newer {
            self.last_seq = Some(out_seq);
            self.last_ts = out_ts;
        }
        (out_seq, out_ts)
    }
}

/// Key frame requests towards one source, at most one per `interval`: a
/// burst of losses at several receivers must not make the sender encode
/// key frames back to back.
#[derive(Clone, Debug)]
pub struct KeyframeGate {
    interval: Duration,
    last: Option<Instant>,
}

impl KeyframeGate {
    pub fn new(interval: Duration) -> KeyframeGate {
        KeyframeGate {
            interval,
            last: None,
        }
    }

    /// Whether a request now should go to the source.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_source_passes_unchanged() {
        let mut r = SeqRewriter::default();
        assert_eq!(r.rewrite(1, 100, 9000, 3000), (100, 9000));
        assert_eq!(r.rewrite(1, 101, 12000, 3000), (101, 12000));
        // A gap stays a gap.
        assert_eq!(r.rewrite(1, 105, 24000, 3000), (105, 24000));
    }

    #[test]
    fn a_new_source_continues_where_the_last_left_off() {
        let mut r = SeqRewriter::default();
        r.rewrite(1, 65_534, 4_294_960_000, 3000);
        r.rewrite(1, 65_535, 4_294_963_000, 3000);
        let (seq, ts) = r.rewrite(2, 7, 500, 3000);
        assert_eq!(seq, 0, "wraps to the next number");
        assert_eq!(ts, 4_294_963_000u32.wrapping_add(3000));
        assert_eq!(r.rewrite(2, 8, 3500, 3000), (1, ts.wrapping_add(3000)));
    }

    #[test]
    fn a_late_packet_does_not_move_the_newest_back() {
        let mut r = SeqRewriter::default();
        r.rewrite(1, 10, 0, 3000);
        r.rewrite(1, 12, 6000, 3000);
        r.rewrite(1, 11, 3000, 3000);
        let (seq, _) = r.rewrite(2, 500, 0, 3000);
        assert_eq!(seq, 13);
    }

    proptest! {
        #[test]
        fn after_any_change_of_source_numbers_stay_contiguous(
            steps in proptest::collection::vec(0u16..4, 0..6),
            start in any::<u16>(),
            n in 1u16..200,
            second in any::<u16>(),
        ) {
            let mut r = SeqRewriter::default();
            let mut newest = r.rewrite(1, start, 0, 3000).0;
            let mut at = start;
            for step in steps {
                // Forwards with gaps, or a late packet (step 0 repeats one back).
                at = if step == 0 { at.wrapping_sub(1) } else { at.wrapping_add(step) };
                let out = r.rewrite(1, at, 0, 3000).0;
                if out.wrapping_sub(newest) < 0x8000 {
                    newest = out;
                }
            }
            let mut prev = r.rewrite(2, second, 0, 3000).0;
            prop_assert_eq!(prev, newest.wrapping_add(1));
            for k in 1..n {
                let (seq, _) = r.rewrite(2, second.wrapping_add(k), 0, 3000);
                prop_assert_eq!(seq, prev.wrapping_add(1));
                prev = seq;
            }
        }
    }

    #[test]
    fn key_frame_requests_are_spaced() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.allow(t0));
        assert!(!gate.allow(t0 + Duration::from_millis(100)));
        assert!(gate.allow(t0 + Duration::from_millis(600)));
    }
}
