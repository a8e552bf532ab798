//! Pure congestion rules for one receiving leg: a loss-based estimate of
//! what its downlink carries (the loss controller of Google Congestion
//! Control, draft-ietf-rmcat-gcc-02 §6), capped by the receiver's own REMB,
//! and the audio-only fallback with hysteresis. The relay tells each source
//! the lowest estimate of its receivers (REMB), so a weak link lowers the
//! picture's bitrate; when even that is too little, the weak receiver gets
//! the sound only, and the picture again once its link recovers.

/// Where an estimate starts: a good home broadband link.
pub const START_BPS: u64 = 1_500_000;
pub const MIN_BPS: u64 = 30_000;
pub const MAX_BPS: u64 = 2_500_000;
/// Below this the receiver gets audio only...
pub const AUDIO_ONLY_BELOW: u64 = 150_000;
/// ...and above this the picture again.
pub const VIDEO_AGAIN_ABOVE: u64 = 300_000;

/// What a report changed for the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    None,
    AudioOnly,
    VideoAgain,
}

#[derive(Clone, Debug)]
pub struct Downlink {
    estimate: u64,
    remb: Option<u64>,
    audio_only: bool,
}

impl Default for Downlink {
    fn default() -> Self {
        Downlink {
            estimate: START_BPS,
            remb: None,
            audio_only: false,
        }
    }
}

impl Downlink {
    /// A reception report: `fraction_lost` in 1/256 since the last one.
    /// Over 10 % loss the estimate drops by half the loss; under 2 % it
    /// grows by 8 %; in between it holds.
    pub fn on_loss(&mut self, fraction_lost: u8) -> Change {
        let loss = fraction_lost as f64 / 256.0;
        let e = self.estimate as f64;
        let next = if loss > 0.10 {
            e * (1.0 - 0.5 * loss)
        } else if loss < 0.02 {
            e * 1.08
        } else {
            e
        };
        self.estimate = (next as u64).clamp(MIN_BPS, MAX_BPS);
        self.decide()
    }

    /// The receiver's own estimate (REMB) caps ours.
    pub fn on_remb(&mut self, bps: u64) -> Change {
        self.remb = Some(bps.max(MIN_BPS));
        self.decide()
    }

    /// What this receiver can take now, bits per second.
    pub fn estimate(&self) -> u64 {
        match self.remb {
            Some(cap) => self.estimate.min(cap),
            None => self.estimate,
        }
    }

    pub fn audio_only(&self) -> bool {
        self.audio_only
    }

    fn decide(&mut self) -> Change {
        let e = self.estimate();
        if !self.audio_only && e < AUDIO_ONLY_BELOW {
            self.audio_only = true;
            Change::AudioOnly
        } else if self.audio_only && e > VIDEO_AGAIN_ABOVE {
            self.audio_only = false;
            Change::VideoAgain
        } else {
            Change::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pct(p: f64) -> u8 {
        (p * 256.0 / 100.0) as u8
    }

    #[test]
    fn heavy_loss_falls_to_audio_only_and_a_clean_link_brings_the_picture_back() {
        let mut d = Downlink::default();
        let mut changes = Vec::new();
        for _ in 0..12 {
            changes.push(d.on_loss(pct(40.0)));
        }
        assert!(d.audio_only(), "estimate {}", d.estimate());
        assert_eq!(
            changes.iter().filter(|c| **c == Change::AudioOnly).count(),
            1
        );
        let mut back = 0;
        for n in 0..60 {
            if d.on_loss(0) == Change::VideoAgain {
                back = n + 1;
                break;
            }
        }
        assert!(back > 0 && !d.audio_only(), "the picture comes back");
        assert!(back > 3, "not at the first clean report: {back}");
    }

    #[test]
    fn moderate_loss_lowers_the_bitrate_but_keeps_the_picture() {
        let mut d = Downlink::default();
        for _ in 0..3 {
            assert_eq!(d.on_loss(pct(12.0)), Change::None);
        }
        assert!(d.estimate() < START_BPS && d.estimate() > AUDIO_ONLY_BELOW);
        // Between 2 and 10 % it holds.
        let held = d.estimate();
        d.on_loss(pct(5.0));
        assert_eq!(d.estimate(), held);
    }

    #[test]
    fn the_receivers_remb_caps_the_estimate() {
        let mut d = Downlink::default();
        assert_eq!(d.on_remb(100_000), Change::AudioOnly);
        assert_eq!(d.estimate(), 100_000);
        assert_eq!(d.on_remb(2_000_000), Change::VideoAgain);
        assert_eq!(d.estimate(), START_BPS);
    }

    proptest! {
        #[test]
        fn the_estimate_stays_in_bounds_and_changes_alternate(reports in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut d = Downlink::default();
            let mut last = Change::VideoAgain;
            for r in reports {
                let c = d.on_loss(r);
                prop_assert!((MIN_BPS..=MAX_BPS).contains(&d.estimate()));
                if c != Change::None {
                    prop_assert_ne!(c, last, "audio-only and back alternate");
                    last = c;
                }
                prop_assert_eq!(d.audio_only(), last == Change::AudioOnly);
            }
        }
    }
}
