//! Assignment of the day's scheduled video visits to the nurses on shift.
//!
//! Pure and I/O-free: the caller maps nurse and client ids to indexes,
//! passes the nurses' shifts, the visits to place and the time already
//! taken, and stores the result. All times are milliseconds since the Unix
//! epoch (UTC); languages and skills are bit sets.
//!
//! # Rules
//!
//! Hard rules, never broken by [`plan`] and verified by [`check`]:
//!
//! * the whole call `[start, start + length)` lies inside the nurse's
//!   shifts (overlapping or touching shifts of one nurse count as one
//!   stretch of work);
//! * the call lies inside the visit's window `[window_start, window_end]`
//!   and does not start before [`PlanInput::not_before`]; a visit whose
//!   length is zero or negative cannot be placed;
//! * a nurse makes one call at a time and leaves at least
//!   [`PlanInput::turnaround`] between the end of one call and the start of
//!   the next, counting the calls in [`PlanInput::fixed`] too (a negative
//!   turnaround counts as zero; fixed busy time that is empty or inverted,
//!   or names no known nurse, is ignored);
//! * the nurse speaks the client's language and has every skill the visit
//!   needs (all bits of [`PlanVisit::language`] and [`PlanVisit::skills`]);
//! * a pinned visit goes to the pinned nurse or to nobody; the pin does not
//!   lift the language and skill rules.
//!
//! Soft goals, in this order: continuity (the named nurse, then the nurses
//! the client already knows, most familiar first), then a start close to
//! the target time, then a balanced load.
//!
//! # Start time
//!
//! Every start is scored by its distance from the target; a start before
//! the target pays [`EARLY_PENALTY_MS`] on top. So a start on time wins, a
//! start up to two minutes late is preferred to any early one, and beyond
//! that the nearest start wins (a late start is kept only while it is at
//! most two minutes further from the target than the best early start).
//!
//! # Load
//!
//! Among nurses whose best start scores the same, the one with the fewest
//! calls so far (kept calls in [`PlanInput::fixed`] included) is chosen. A
//! nurse who brings a language or a skill the visit does not need counts
//! [`SPECIALIST_RESERVE`] calls more, so that bilingual and skilled nurses
//! stay free a little longer for the visits only they can make.
//!
//! # Algorithm
//!
//! Each nurse's timeline is a sorted list of taken intervals; the best
//! start on one nurse is found with a binary search and a walk over the
//! gaps inside the visit's window. Nurses with the same languages, skills
//! and shifts form a pool, ordered by load and indexed by capability and
//! shift start, so a visit only looks at nurses who could take it. Each
//! pool also keeps a free-time index (its working time cut into at most 512
//! slots, with a bit per member and slot), which finds the least loaded
//! nurse free to start exactly on the target without walking every
//! timeline; only when nobody is free on time are the nurses examined one
//! by one in order of load, a bounded number of them.
//!
//! Visits are taken in order of target time, in passes: pinned visits on
//! their nurse; visits on their named nurse; the rest on the first known
//! nurse with room; the rest on the best nurse of the pools. Then calls
//! move to their named nurse where that nurse has room, and a repair pass
//! retries every unplaced visit against all eligible nurses and, when none
//! has room, moves one call of an eligible nurse to another nurse or time
//! to make room (a call on its named nurse only moves in time, a pinned
//! call never leaves its nurse). Finally calls move to their named nurse
//! again where room has opened, and unplaced visits are tried once more, so
//! that no unplaced visit fits anywhere in the finished plan.
//!
//! When a nurse signs off sick the caller cuts the nurse's shift, passes
//! the calls that stay as [`PlanInput::fixed`] and plans the freed visits.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{btree_set, BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;

/// What a start before the target costs on top of its distance from the
/// target (two minutes).
pub const EARLY_PENALTY_MS: i64 = 2 * 60 * 1000;

/// How many calls more a nurse with a language or skill the visit does not
/// need is counted as having when loads are compared.
pub const SPECIALIST_RESERVE: u32 = 2;

/// Nurses examined per visit in the first pass once one with room is found.
const GREEDY_EXAMINE: usize = 48;
/// Nurses examined per visit in the first pass at most.
const GREEDY_EXAMINE_MAX: usize = 256;
/// Nurses examined when a call is moved away to make room.
const RELOCATE_EXAMINE: usize = 256;
/// Timeline look-ups the moving of calls may spend in all.
const REPAIR_PROBE_BUDGET: u64 = 2_000_000;
/// Slots of a pool's free-time index at most.
const SLOTS: i128 = 512;
/// Rounds of the repair pass.
const REPAIR_ROUNDS: usize = 3;
/// Calls of one nurse tried as the one to move away.
const DISPLACE_PER_NURSE: usize = 8;

/// A nurse as the planner sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanNurse {
    /// Languages spoken (bit set).
    pub languages: u8,
    /// Skills held (bit set).
    pub skills: u64,
    /// On-shift intervals `[start, end)` in the planned period.
    pub shifts: Vec<(i64, i64)>,
}

/// A visit to place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanVisit {
    /// The whole call must lie inside `[window_start, window_end]`.
    pub window_start: i64,
    pub window_end: i64,
    /// The planned time; the call should start as close to it as possible.
    pub target: i64,
    /// Call length.
    pub length: i64,
    /// The client's language (one bit); the nurse must speak it.
    pub language: u8,
    /// Skills the visit needs (0 = none); the nurse must have all of them.
    pub skills: u64,
    /// The client's named nurse.
    pub named_nurse: Option<usize>,
    /// Nurses who visited the client recently, most familiar first.
    pub known_nurses: Vec<usize>,
    /// Only this nurse may take the visit.
    pub pinned: Option<usize>,
}

/// Time a nurse has already given away (a call running, done or kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy {
    pub nurse: usize,
    pub start: i64,
    pub end: i64,
}

/// Everything the planner needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanInput {
    pub nurses: Vec<PlanNurse>,
    pub visits: Vec<PlanVisit>,
    /// Busy time that stays as it is.
    pub fixed: Vec<Busy>,
    /// Minimum gap between two calls of one nurse.
    pub turnaround: i64,
    /// No call may start before this (`i64::MIN` for no limit).
    pub not_before: i64,
}

impl Default for PlanInput {
    fn default() -> Self {
        PlanInput {
            nurses: Vec::new(),
            visits: Vec::new(),
            fixed: Vec::new(),
            turnaround: 0,
            not_before: i64::MIN,
        }
    }
}

/// Where and when a visit's call was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub nurse: usize,
    pub start: i64,
}

/// Why a visit could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unplaced {
    /// No nurse with the language and skills (or the pinned nurse, when
    /// that nurse is unknown or lacks them) is on shift for the call
    /// anywhere in the window.
    NoEligibleNurse,
    /// Eligible nurses are on shift, but none has room.
    NoRoom,
    /// The window ends before `not_before`, or the call does not fit the
    /// window at all (including a length of zero or less).
    WindowPassed,
}

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unplaced::NoEligibleNurse => "no eligible nurse on shift in the window",
            Unplaced::NoRoom => "no eligible nurse has room in the window",
            Unplaced::WindowPassed => "the window has passed or cannot hold the call",
        })
    }
}

/// The result of planning: one entry per visit, in the input's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub placements: Vec<Result<Placement, Unplaced>>,
    pub stats: PlanStats,
}

/// How well a plan does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanStats {
    pub visits: usize,
    pub placed: usize,
    pub unplaced: usize,
    /// Unplaced visits by reason.
    pub no_eligible_nurse: usize,
    pub no_room: usize,
    pub window_passed: usize,
    /// Visits whose named nurse is a valid nurse index.
    pub with_named_nurse: usize,
    /// Of those, the visits the named nurse could take at all: eligible,
    /// not pinned to someone else, and on shift for the call in the window.
    pub named_nurse_possible: usize,
    /// Visits placed on their named nurse.
    pub named_nurse_kept: usize,
    /// Visits placed on their named nurse or on a nurse the client knows.
    pub known_nurse_kept: usize,
    /// Sum and maximum of `max(0, start - target)` over placed visits.
    pub total_lateness_ms: i64,
    pub max_lateness_ms: i64,
    /// Nurses with any shift, and the calls this plan gives them (kept
    /// calls in `fixed` not counted): fewest, most and mean.
    pub nurses_on_shift: usize,
    pub min_calls: usize,
    pub max_calls: usize,
    pub mean_calls: f64,
}

impl PlanStats {
    /// `named_nurse_kept / named_nurse_possible`; none when no visit could
    /// go to its named nurse.
    pub fn named_nurse_rate(&self) -> Option<f64> {
        (self.named_nurse_possible > 0)
            .then(|| self.named_nurse_kept as f64 / self.named_nurse_possible as f64)
    }

    /// `known_nurse_kept / placed`: the share of calls made by a nurse the
    /// client knows; none when nothing was placed.
    pub fn known_nurse_rate(&self) -> Option<f64> {
        (self.placed > 0).then(|| self.known_nurse_kept as f64 / self.placed as f64)
    }
}

impl fmt::Display for PlanStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
        write!(
            f,
            "{} visits: {} placed, {} unplaced ({} no eligible nurse, {} no room, {} window passed); \
             named nurse kept {}/{} possible ({}) of {} with a named nurse; familiar nurse {} ({}); \
             lateness total {} min, max {} min; calls per nurse on shift ({}): min {}, max {}, mean {:.1}",
            self.visits,
            self.placed,
            self.unplaced,
            self.no_eligible_nurse,
            self.no_room,
            self.window_passed,
            self.named_nurse_kept,
            self.named_nurse_possible,
            pct(self.named_nurse_rate()),
            self.with_named_nurse,
            self.known_nurse_kept,
            pct(self.known_nurse_rate()),
            self.total_lateness_ms / 60_000,
            self.max_lateness_ms / 60_000,
            self.nurses_on_shift,
            self.min_calls,
            self.max_calls,
            self.mean_calls,
        )
    }
}

/// A broken hard rule found by [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The plan does not have one entry per visit.
    PlacementCount { expected: usize, found: usize },
    /// The visit was placed on a nurse index that does not exist.
    UnknownNurse { visit: usize, nurse: usize },
    /// The visit is pinned to another nurse.
    PinBroken {
        visit: usize,
        pinned: usize,
        nurse: usize,
    },
    /// The nurse does not speak the client's language.
    Language { visit: usize, nurse: usize },
    /// The nurse lacks skills the visit needs.
    Skills {
        visit: usize,
        nurse: usize,
        missing: u64,
    },
    /// The call does not fit inside the window (or has no length).
    OutsideWindow { visit: usize, start: i64 },
    /// The call starts before `not_before`.
    TooEarly { visit: usize, start: i64 },
    /// The call is not inside the nurse's shifts.
    OffShift {
        visit: usize,
        nurse: usize,
        start: i64,
    },
    /// The call overlaps fixed busy time, or comes closer to it than the
    /// turnaround (`fixed` indexes [`PlanInput::fixed`]).
    OverlapsFixed {
        visit: usize,
        nurse: usize,
        fixed: usize,
    },
    /// Two calls of one nurse overlap or come closer than the turnaround.
    Overlap {
        visit: usize,
        other: usize,
        nurse: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::PlacementCount { expected, found } => {
                write!(f, "the plan has {found} entries for {expected} visits")
            }
            Violation::UnknownNurse { visit, nurse } => {
                write!(f, "visit {visit} is placed on unknown nurse {nurse}")
            }
            Violation::PinBroken {
                visit,
                pinned,
                nurse,
            } => write!(
                f,
                "visit {visit} is pinned to nurse {pinned} but placed on nurse {nurse}"
            ),
            Violation::Language { visit, nurse } => {
                write!(f, "nurse {nurse} does not speak the language of visit {visit}")
            }
            Violation::Skills {
                visit,
                nurse,
                missing,
            } => write!(
                f,
                "nurse {nurse} lacks skills {missing:#x} that visit {visit} needs"
            ),
            Violation::OutsideWindow { visit, start } => {
                write!(f, "the call of visit {visit} at {start} is outside its window")
            }
            Violation::TooEarly { visit, start } => {
                write!(f, "the call of visit {visit} starts at {start}, before the allowed start")
            }
            Violation::OffShift {
                visit,
                nurse,
                start,
            } => write!(
                f,
                "the call of visit {visit} at {start} is outside the shifts of nurse {nurse}"
            ),
            Violation::OverlapsFixed {
                visit,
                nurse,
                fixed,
            } => write!(
                f,
                "the call of visit {visit} clashes with busy time {fixed} of nurse {nurse} (overlap or short turnaround)"
            ),
            Violation::Overlap {
                visit,
                other,
                nurse,
            } => write!(
                f,
                "the calls of visits {visit} and {other} of nurse {nurse} overlap or leave too short a turnaround"
            ),
        }
    }
}

impl std::error::Error for Violation {}

/// Assigns the visits to nurses. Never panics; a visit that cannot be
/// placed is reported with the reason.
pub fn plan(input: &PlanInput) -> Plan {
    plan_with(input, true)
}

fn plan_with(input: &PlanInput, repair: bool) -> Plan {
    let mut planner = Planner::new(input);
    let order = planner.order();
    planner.greedy(&order);
    if repair {
        planner.improve_continuity(&order);
        planner.repair(&order);
        planner.improve_continuity(&order);
        planner.insert_pass(&order);
    }
    planner.finish()
}

// ---------------------------------------------------------------------------
// The planner
// ---------------------------------------------------------------------------

/// Owner of a timeline entry that is fixed busy time.
const FIXED: usize = usize::MAX;
/// Pool of a nurse with no shift.
const NO_POOL: usize = usize::MAX;

/// Where a visit's call may start: `[lo, hi]`, and its length and target.
#[derive(Clone, Copy, Debug)]
struct Need {
    lo: i64,
    hi: i64,
    len: i64,
    target: i64,
}

impl Need {
    fn of(v: &PlanVisit, not_before: i64) -> Option<Need> {
        if v.length <= 0 {
            return None;
        }
        let lo = v.window_start.max(not_before);
        let hi = v.window_end.checked_sub(v.length)?;
        (lo <= hi).then_some(Need {
            lo,
            hi,
            len: v.length,
            target: v.target,
        })
    }

    /// Score of a start: distance from the target, plus the early penalty.
    fn cost(&self, start: i64) -> i128 {
        let d = i128::from(start) - i128::from(self.target);
        if d >= 0 {
            d
        } else {
            -d + i128::from(EARLY_PENALTY_MS)
        }
    }

    /// Whether shifts `segs` (merged, sorted) can hold the call somewhere.
    fn hosted_by(&self, segs: &[(i64, i64)]) -> bool {
        segs.iter().any(|&(s, e)| {
            let a = i128::from(self.lo.max(s));
            let b = i128::from(self.hi).min(i128::from(e) - i128::from(self.len));
            a <= b
        })
    }
}

/// A taken interval of a nurse: `[start, end)` where `end` includes the
/// turnaround after the call.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: i64,
    end: i64,
    owner: usize,
}

struct NurseState {
    /// Shifts, merged and sorted.
    segs: Vec<(i64, i64)>,
    /// Taken intervals, sorted and disjoint.
    entries: Vec<Entry>,
    /// Calls so far, kept ones included.
    load: u32,
    pool: usize,
    /// Index among the pool's members.
    local: usize,
}

impl NurseState {
    /// The best start for the call on this nurse, with its score.
    fn best_start(&self, need: &Need, turnaround: i64) -> Option<(i64, i128)> {
        let len = i128::from(need.len);
        let t = i128::from(turnaround);
        let mut best: Option<(i64, i128)> = None;
        for &(ss, se) in &self.segs {
            if ss > need.hi {
                break;
            }
            let a = need.lo.max(ss);
            let b = i128::from(need.hi).min(i128::from(se) - len);
            if i128::from(a) > b {
                continue;
            }
            let mut cur = a;
            let mut i = self.entries.partition_point(|e| e.end <= a);
            loop {
                let limit = match self.entries.get(i) {
                    Some(e) => (i128::from(e.start) - len - t).min(b),
                    None => b,
                };
                if i128::from(cur) <= limit {
                    // `limit` lies in [cur, hi], so it fits an i64.
                    let y = i64::try_from(limit).unwrap_or(need.hi);
                    let s = need.target.max(cur).min(y);
                    let c = need.cost(s);
                    if best.is_none_or(|(_, bc)| c < bc) {
                        best = Some((s, c));
                    }
                    if c == 0 || cur >= need.target {
                        // Every later start is later still.
                        return best;
                    }
                }
                match self.entries.get(i) {
                    Some(e) => {
                        cur = cur.max(e.end);
                        if i128::from(cur) > b {
                            break;
                        }
                        i += 1;
                    }
                    None => break,
                }
            }
        }
        best
    }
}

/// Nurses with the same languages, skills and shifts, ordered by load.
///
/// The pool's working time is cut into at most [`SLOTS`] equal slots, and
/// for every slot a bit set tells which members are free all through it, so
/// that the nurses free at a visit's target are found without looking at
/// each timeline.
struct Pool {
    languages: u8,
    skills: u64,
    segs: Vec<(i64, i64)>,
    /// (load, nurse, member index), least loaded first.
    members: BTreeSet<Member>,
    /// Number of members.
    size: usize,
    /// Start of slot 0, slot length, number of slots, words per slot.
    base: i128,
    slot: i128,
    slots: usize,
    words: usize,
    /// `slots * words` words; bit `m` of slot `k` set = member `m` free.
    free: Vec<u64>,
}

impl Pool {
    /// Slots `[k0, k1]` that `[from, to)` touches, clamped to the pool's.
    fn slot_range(&self, from: i128, to: i128) -> Option<(usize, usize)> {
        if from >= to || self.slots == 0 {
            return None;
        }
        let last = i128::try_from(self.slots - 1).ok()?;
        let k0 = (from - self.base).div_euclid(self.slot).max(0);
        let k1 = (to - 1 - self.base).div_euclid(self.slot).min(last);
        if k0 > k1 {
            return None;
        }
        Some((usize::try_from(k0).ok()?, usize::try_from(k1).ok()?))
    }
}

/// The pools of one capability, ordered by their first shift start.
struct Group {
    languages: u8,
    skills: u64,
    pools: Vec<usize>,
    firsts: Vec<i64>,
    /// Longest stretch from first shift start to last shift end of a pool.
    max_span: i128,
}

type PoolKey = (u8, u64, Vec<(i64, i64)>);
/// A pool member: (load, nurse index, member index).
type Member = (u32, usize, usize);

fn fits(languages: u8, skills: u64, v: &PlanVisit) -> bool {
    v.language & !languages == 0 && v.skills & !skills == 0
}

/// Shifts sorted, empty and inverted ones dropped, overlapping or touching
/// ones joined.
fn merge_shifts(shifts: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut sorted: Vec<(i64, i64)> = shifts.iter().copied().filter(|(a, b)| a < b).collect();
    sorted.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(sorted.len());
    for (a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

struct Planner<'a> {
    input: &'a PlanInput,
    turnaround: i64,
    needs: Vec<Option<Need>>,
    nurses: Vec<NurseState>,
    pools: Vec<Pool>,
    groups: Vec<Group>,
    assigned: Vec<Option<(usize, i64)>>,
    probes: Cell<u64>,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput) -> Self {
        let turnaround = input.turnaround.max(0);
        let needs = input
            .visits
            .iter()
            .map(|v| Need::of(v, input.not_before))
            .collect();
        let mut nurses: Vec<NurseState> = input
            .nurses
            .iter()
            .map(|n| NurseState {
                segs: merge_shifts(&n.shifts),
                entries: Vec::new(),
                load: 0,
                pool: NO_POOL,
                local: 0,
            })
            .collect();

        let mut fixed: Vec<Vec<(i64, i64)>> = vec![Vec::new(); nurses.len()];
        for b in &input.fixed {
            if b.end > b.start {
                if let Some(list) = fixed.get_mut(b.nurse) {
                    list.push((b.start, b.end.saturating_add(turnaround)));
                }
            }
        }
        for (ns, mut list) in nurses.iter_mut().zip(fixed) {
            ns.load = u32::try_from(list.len()).unwrap_or(u32::MAX);
            list.sort_unstable();
            for (s, e) in list {
                match ns.entries.last_mut() {
                    Some(last) if s <= last.end => last.end = last.end.max(e),
                    _ => ns.entries.push(Entry {
                        start: s,
                        end: e,
                        owner: FIXED,
                    }),
                }
            }
        }

        let mut pools: Vec<Pool> = Vec::new();
        let mut by_key: BTreeMap<PoolKey, usize> = BTreeMap::new();
        for (n, (ns, nurse)) in nurses.iter_mut().zip(&input.nurses).enumerate() {
            if ns.segs.is_empty() {
                continue;
            }
            let key = (nurse.languages, nurse.skills, ns.segs.clone());
            let next = pools.len();
            let p = *by_key.entry(key).or_insert(next);
            if p == next {
                let base = ns.segs.first().map_or(0, |s| i128::from(s.0));
                let end = ns.segs.last().map_or(1, |s| i128::from(s.1));
                let span = (end - base).max(1);
                let slot = ((span + SLOTS - 1) / SLOTS).max(1);
                pools.push(Pool {
                    languages: nurse.languages,
                    skills: nurse.skills,
                    segs: ns.segs.clone(),
                    members: BTreeSet::new(),
                    size: 0,
                    base,
                    slot,
                    slots: usize::try_from((span + slot - 1) / slot).unwrap_or(1),
                    words: 0,
                    free: Vec::new(),
                });
            }
            if let Some(pool) = pools.get_mut(p) {
                ns.pool = p;
                ns.local = pool.size;
                pool.size += 1;
                pool.members.insert((ns.load, n, ns.local));
            }
        }
        for pool in &mut pools {
            pool.words = pool.size.div_ceil(64);
            pool.free = vec![0; pool.slots * pool.words];
            for m in 0..pool.size {
                for k in 0..pool.slots {
                    pool.free[k * pool.words + m / 64] |= 1 << (m % 64);
                }
            }
        }

        let mut by_caps: BTreeMap<(u8, u64), Vec<usize>> = BTreeMap::new();
        for (p, pool) in pools.iter().enumerate() {
            by_caps
                .entry((pool.languages, pool.skills))
                .or_default()
                .push(p);
        }
        let first = |pool: &Pool| pool.segs.first().map_or(i64::MAX, |s| s.0);
        let span = |pool: &Pool| match (pool.segs.first(), pool.segs.last()) {
            (Some(a), Some(b)) => i128::from(b.1) - i128::from(a.0),
            _ => 0,
        };
        let groups = by_caps
            .into_iter()
            .map(|((languages, skills), mut list)| {
                list.sort_by_key(|&p| (first(&pools[p]), p));
                Group {
                    languages,
                    skills,
                    firsts: list.iter().map(|&p| first(&pools[p])).collect(),
                    max_span: list.iter().map(|&p| span(&pools[p])).max().unwrap_or(0),
                    pools: list,
                }
            })
            .collect();

        let mut planner = Planner {
            input,
            turnaround,
            needs,
            nurses,
            pools,
            groups,
            assigned: vec![None; input.visits.len()],
            probes: Cell::new(0),
        };
        for n in 0..planner.nurses.len() {
            let spans: Vec<(i64, i64)> = planner.nurses[n]
                .entries
                .iter()
                .map(|e| (e.start, e.end))
                .collect();
            for (from, to) in spans {
                planner.refresh_slots(n, from, to);
            }
        }
        planner
    }

    /// Brings the free-time index of nurse `n` up to date for `[from, to)`.
    fn refresh_slots(&mut self, n: usize, from: i64, to: i64) {
        let Some(ns) = self.nurses.get(n) else {
            return;
        };
        let Some(pool) = self.pools.get_mut(ns.pool) else {
            return;
        };
        let Some((k0, k1)) = pool.slot_range(i128::from(from), i128::from(to)) else {
            return;
        };
        let (word, bit) = (ns.local / 64, 1u64 << (ns.local % 64));
        for k in k0..=k1 {
            let start = pool.base + pool.slot * k as i128;
            let end = start + pool.slot;
            let i = ns.entries.partition_point(|e| i128::from(e.end) <= start);
            let busy = ns.entries.get(i).is_some_and(|e| i128::from(e.start) < end);
            if let Some(w) = pool.free.get_mut(k * pool.words + word) {
                if busy {
                    *w &= !bit;
                } else {
                    *w |= bit;
                }
            }
        }
    }

    /// The least loaded nurse of the pools who is free to start exactly at
    /// the target, by the free-time index, confirmed on the timeline.
    fn free_at_target(&self, v: &PlanVisit, need: &Need, pools: &[usize]) -> Option<(usize, i64)> {
        let target = need.target;
        if target < need.lo || target > need.hi {
            return None;
        }
        let call_end = i128::from(target) + i128::from(need.len);
        let taken_end = call_end + i128::from(self.turnaround);
        let mut best: Option<(u64, usize)> = None;
        let mut acc: Vec<u64> = Vec::new();
        for pool in pools.iter().filter_map(|&p| self.pools.get(p)) {
            let on_shift = pool
                .segs
                .iter()
                .any(|&(s, e)| s <= target && call_end <= i128::from(e));
            if !on_shift {
                continue;
            }
            let Some((k0, k1)) = pool.slot_range(i128::from(target), taken_end) else {
                continue;
            };
            let penalty = if pool.languages & !v.language != 0 || pool.skills & !v.skills != 0 {
                u64::from(SPECIALIST_RESERVE)
            } else {
                0
            };
            let key = |&(load, n, _): &Member| (u64::from(load) + penalty, n);
            // The pool's least loaded member cannot beat the best so far.
            if pool
                .members
                .first()
                .is_none_or(|m| best.is_some_and(|b| key(m) >= b))
            {
                continue;
            }
            acc.clear();
            acc.extend_from_slice(pool.free.get(k0 * pool.words..(k0 + 1) * pool.words)?);
            for k in k0 + 1..=k1 {
                let row = pool.free.get(k * pool.words..(k + 1) * pool.words)?;
                for (a, r) in acc.iter_mut().zip(row) {
                    *a &= r;
                }
            }
            if acc.iter().all(|&w| w == 0) {
                continue;
            }
            // Members by load: the first one free is the pool's best.
            for member in &pool.members {
                let k = key(member);
                if best.is_some_and(|b| k >= b) {
                    break;
                }
                let m = member.2;
                if acc.get(m / 64).is_some_and(|w| w >> (m % 64) & 1 == 1) {
                    best = Some(k);
                    break;
                }
            }
        }
        let (_, n) = best?;
        match self.probe(n, need) {
            Some((s, 0)) => Some((n, s)),
            _ => None,
        }
    }

    /// Visits by target time, then window end.
    fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.input.visits.len()).collect();
        let visits = &self.input.visits;
        order.sort_by_key(|&i| (visits[i].target, visits[i].window_end, i));
        order
    }

    /// Whether nurse `n` may take visit `v` by pin, language and skill.
    fn allowed(&self, v: &PlanVisit, n: usize) -> bool {
        v.pinned.is_none_or(|p| p == n)
            && self
                .input
                .nurses
                .get(n)
                .is_some_and(|nurse| fits(nurse.languages, nurse.skills, v))
    }

    fn probe(&self, n: usize, need: &Need) -> Option<(i64, i128)> {
        self.probes.set(self.probes.get().wrapping_add(1));
        self.nurses
            .get(n)
            .and_then(|ns| ns.best_start(need, self.turnaround))
    }

    /// Nurse `n` if allowed and with room, with the best start.
    fn try_nurse(&self, v: &PlanVisit, n: usize, need: &Need) -> Option<(usize, i64)> {
        if !self.allowed(v, n) {
            return None;
        }
        self.probe(n, need).map(|(s, _)| (n, s))
    }

    /// The pools whose nurses may take `v` and are on shift for it.
    fn candidate_pools(&self, v: &PlanVisit, need: &Need, out: &mut Vec<usize>) {
        out.clear();
        let lower = i128::from(need.lo) + i128::from(need.len);
        for g in &self.groups {
            if !fits(g.languages, g.skills, v) {
                continue;
            }
            let from = g
                .firsts
                .partition_point(|&f| i128::from(f) < lower - g.max_span);
            let to = g.firsts.partition_point(|&f| f <= need.hi);
            for &p in g.pools.get(from..to).unwrap_or(&[]) {
                if self
                    .pools
                    .get(p)
                    .is_some_and(|pool| need.hosted_by(&pool.segs))
                {
                    out.push(p);
                }
            }
        }
    }

    /// The best nurse of the pools: nurses are examined in order of
    /// (adjusted) load, and the first on time ends the search; after
    /// `enough` examined the best so far is taken, and after `cap` the
    /// search gives up.
    fn choose_pooled(
        &self,
        v: &PlanVisit,
        need: &Need,
        pools: &[usize],
        enough: usize,
        cap: usize,
    ) -> Option<(usize, i64)> {
        if let Some(found) = self.free_at_target(v, need, pools) {
            return Some(found);
        }
        let mut iters: Vec<(u64, btree_set::Iter<'_, Member>)> = Vec::with_capacity(pools.len());
        let mut heap = BinaryHeap::with_capacity(pools.len());
        for (slot, pool) in pools.iter().filter_map(|&p| self.pools.get(p)).enumerate() {
            let spare = pool.languages & !v.language != 0 || pool.skills & !v.skills != 0;
            let penalty = if spare {
                u64::from(SPECIALIST_RESERVE)
            } else {
                0
            };
            let mut it = pool.members.iter();
            if let Some(&(load, n, _)) = it.next() {
                heap.push(Reverse((u64::from(load) + penalty, n, slot)));
            }
            iters.push((penalty, it));
        }
        let mut best: Option<(i128, usize, i64)> = None;
        let mut examined = 0usize;
        while let Some(Reverse((_, n, slot))) = heap.pop() {
            let limit = if best.is_some() { enough } else { cap };
            if examined >= limit {
                break;
            }
            examined += 1;
            if let Some((s, c)) = self.probe(n, need) {
                // Nurses come in order of load: only a better start wins.
                if best.is_none_or(|(bc, _, _)| c < bc) {
                    best = Some((c, n, s));
                }
                if c == 0 {
                    break;
                }
            }
            if let Some((penalty, it)) = iters.get_mut(slot) {
                if let Some(&(load, m, _)) = it.next() {
                    heap.push(Reverse((u64::from(load) + *penalty, m, slot)));
                }
            }
        }
        best.map(|(_, n, s)| (n, s))
    }

    /// The nurse for visit `vi` by continuity first: the pinned nurse
    /// alone, or `only` alone, or the named nurse, the known nurses in
    /// order, then the best of the pools.
    fn choose_continuity(
        &self,
        vi: usize,
        need: &Need,
        only: Option<usize>,
        enough: usize,
        cap: usize,
    ) -> Option<(usize, i64)> {
        let v = self.input.visits.get(vi)?;
        if let Some(p) = v.pinned.or(only) {
            return self.try_nurse(v, p, need);
        }
        for &n in v.named_nurse.iter().chain(&v.known_nurses) {
            if let Some(found) = self.try_nurse(v, n, need) {
                return Some(found);
            }
        }
        let mut pools = Vec::new();
        self.candidate_pools(v, need, &mut pools);
        self.choose_pooled(v, need, &pools, enough, cap)
    }

    fn set_load(&mut self, n: usize, load: u32) {
        let Some(ns) = self.nurses.get_mut(n) else {
            return;
        };
        let old = ns.load;
        ns.load = load;
        if let Some(pool) = self.pools.get_mut(ns.pool) {
            pool.members.remove(&(old, n, ns.local));
            pool.members.insert((load, n, ns.local));
        }
    }

    fn place(&mut self, vi: usize, n: usize, start: i64) {
        let len = self.input.visits.get(vi).map_or(0, |v| v.length);
        let end = start.saturating_add(len).saturating_add(self.turnaround);
        let Some(ns) = self.nurses.get_mut(n) else {
            return;
        };
        let at = ns.entries.partition_point(|e| e.start < start);
        ns.entries.insert(
            at,
            Entry {
                start,
                end,
                owner: vi,
            },
        );
        let load = ns.load.saturating_add(1);
        self.set_load(n, load);
        self.refresh_slots(n, start, end);
        if let Some(slot) = self.assigned.get_mut(vi) {
            *slot = Some((n, start));
        }
    }

    fn unplace(&mut self, vi: usize) -> Option<(usize, i64)> {
        let (n, start) = self.assigned.get_mut(vi)?.take()?;
        let ns = self.nurses.get_mut(n)?;
        let from = ns.entries.partition_point(|e| e.start < start);
        let pos = ns.entries[from..].iter().position(|e| e.owner == vi)? + from;
        let removed = ns.entries.remove(pos);
        let load = ns.load.saturating_sub(1);
        self.set_load(n, load);
        self.refresh_slots(n, removed.start, removed.end);
        Some((n, start))
    }

    fn greedy(&mut self, order: &[usize]) {
        let input = self.input;
        // Pinned visits on their nurse.
        for &vi in order {
            let v = &input.visits[vi];
            let (Some(p), Some(need)) = (v.pinned, self.needs[vi]) else {
                continue;
            };
            if let Some((n, s)) = self.try_nurse(v, p, &need) {
                self.place(vi, n, s);
            }
        }
        // Visits on their named nurse.
        for &vi in order {
            let v = &input.visits[vi];
            let (None, Some(named), Some(need)) = (v.pinned, v.named_nurse, self.needs[vi]) else {
                continue;
            };
            if let Some((n, s)) = self.try_nurse(v, named, &need) {
                self.place(vi, n, s);
            }
        }
        // The rest on the first known nurse with room.
        for &vi in order {
            let v = &input.visits[vi];
            let (None, None, Some(need)) = (v.pinned, self.assigned[vi], self.needs[vi]) else {
                continue;
            };
            let found = v
                .known_nurses
                .iter()
                .filter(|&&n| Some(n) != v.named_nurse)
                .find_map(|&n| self.try_nurse(v, n, &need));
            if let Some((n, s)) = found {
                self.place(vi, n, s);
            }
        }
        // The rest on the best nurse of the pools.
        let mut pools = Vec::new();
        for &vi in order {
            let v = &input.visits[vi];
            let (None, None, Some(need)) = (v.pinned, self.assigned[vi], self.needs[vi]) else {
                continue;
            };
            self.candidate_pools(v, &need, &mut pools);
            if let Some((n, s)) =
                self.choose_pooled(v, &need, &pools, GREEDY_EXAMINE, GREEDY_EXAMINE_MAX)
            {
                self.place(vi, n, s);
            }
        }
    }

    /// Retries every unplaced visit against all eligible nurses, then tries
    /// to make room by moving one call.
    fn repair(&mut self, order: &[usize]) {
        let budget_end = self.probes.get().saturating_add(REPAIR_PROBE_BUDGET);
        for _ in 0..REPAIR_ROUNDS {
            let mut progress = false;
            for &vi in order {
                let (None, Some(need)) = (self.assigned[vi], self.needs[vi]) else {
                    continue;
                };
                if let Some((n, s)) =
                    self.choose_continuity(vi, &need, None, usize::MAX, usize::MAX)
                {
                    self.place(vi, n, s);
                    progress = true;
                } else if self.probes.get() < budget_end && self.displace(vi, &need, budget_end) {
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
    }

    /// Every unplaced visit tried once more against all eligible nurses.
    fn insert_pass(&mut self, order: &[usize]) {
        for &vi in order {
            let (None, Some(need)) = (self.assigned[vi], self.needs[vi]) else {
                continue;
            };
            if let Some((n, s)) = self.choose_continuity(vi, &need, None, usize::MAX, usize::MAX) {
                self.place(vi, n, s);
            }
        }
    }

    /// Nurses who may take visit `vi` and are on shift for it: the named
    /// and known nurses first.
    fn displacement_candidates(&self, vi: usize, need: &Need) -> Vec<usize> {
        let Some(v) = self.input.visits.get(vi) else {
            return Vec::new();
        };
        let hosts = |n: usize| {
            self.allowed(v, n)
                && self
                    .nurses
                    .get(n)
                    .is_some_and(|ns| need.hosted_by(&ns.segs))
        };
        if let Some(p) = v.pinned {
            return if hosts(p) { vec![p] } else { Vec::new() };
        }
        let mut seen = vec![false; self.nurses.len()];
        let mut out = Vec::new();
        for &n in v.named_nurse.iter().chain(&v.known_nurses) {
            if hosts(n) && !seen[n] {
                seen[n] = true;
                out.push(n);
            }
        }
        let mut pools = Vec::new();
        self.candidate_pools(v, need, &mut pools);
        for &p in &pools {
            for &(_, n, _) in &self.pools[p].members {
                if !seen[n] {
                    seen[n] = true;
                    out.push(n);
                }
            }
        }
        out
    }

    /// Makes room for visit `vi` by moving one call of an eligible nurse to
    /// another nurse or time.
    fn displace(&mut self, vi: usize, need: &Need, budget_end: u64) -> bool {
        let input = self.input;
        let reach = i128::from(need.hi) + i128::from(need.len) + i128::from(self.turnaround);
        for n in self.displacement_candidates(vi, need) {
            let blockers: Vec<usize> = {
                let entries = &self.nurses[n].entries;
                let from = entries.partition_point(|e| e.end <= need.lo);
                entries[from..]
                    .iter()
                    .take_while(|e| i128::from(e.start) < reach)
                    .filter(|e| e.owner != FIXED)
                    .map(|e| e.owner)
                    .take(DISPLACE_PER_NURSE)
                    .collect()
            };
            for p in blockers {
                if self.probes.get() >= budget_end {
                    return false;
                }
                let Some(pneed) = self.needs.get(p).copied().flatten() else {
                    continue;
                };
                let Some((pn, ps)) = self.unplace(p) else {
                    continue;
                };
                if let Some((s, _)) = self.probe(n, need) {
                    self.place(vi, n, s);
                    // A call on its named nurse stays with that nurse.
                    let only = (input.visits[p].named_nurse == Some(pn)).then_some(pn);
                    if let Some((n2, s2)) =
                        self.choose_continuity(p, &pneed, only, RELOCATE_EXAMINE, RELOCATE_EXAMINE)
                    {
                        self.place(p, n2, s2);
                        return true;
                    }
                    self.unplace(vi);
                }
                self.place(p, pn, ps);
            }
        }
        false
    }

    /// Moves calls to their named nurse wherever that nurse has room.
    fn improve_continuity(&mut self, order: &[usize]) {
        let input = self.input;
        loop {
            let mut moved = false;
            for &vi in order {
                let v = &input.visits[vi];
                let (Some((cur, _)), Some(named), None, Some(need)) =
                    (self.assigned[vi], v.named_nurse, v.pinned, self.needs[vi])
                else {
                    continue;
                };
                if cur == named {
                    continue;
                }
                if let Some((n, s)) = self.try_nurse(v, named, &need) {
                    self.unplace(vi);
                    self.place(vi, n, s);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn reason(&self, vi: usize) -> Unplaced {
        let (Some(v), Some(Some(need))) = (self.input.visits.get(vi), self.needs.get(vi)) else {
            return Unplaced::WindowPassed;
        };
        let on_shift = match v.pinned {
            Some(p) => {
                self.allowed(v, p)
                    && self
                        .nurses
                        .get(p)
                        .is_some_and(|ns| need.hosted_by(&ns.segs))
            }
            None => {
                let mut pools = Vec::new();
                self.candidate_pools(v, need, &mut pools);
                !pools.is_empty()
            }
        };
        if on_shift {
            Unplaced::NoRoom
        } else {
            Unplaced::NoEligibleNurse
        }
    }

    fn named_possible(&self, vi: usize) -> bool {
        let (Some(v), Some(Some(need))) = (self.input.visits.get(vi), self.needs.get(vi)) else {
            return false;
        };
        v.named_nurse.is_some_and(|n| {
            self.allowed(v, n)
                && self
                    .nurses
                    .get(n)
                    .is_some_and(|ns| need.hosted_by(&ns.segs))
        })
    }

    fn finish(self) -> Plan {
        let input = self.input;
        let nurse_count = input.nurses.len();
        let mut stats = PlanStats {
            visits: input.visits.len(),
            ..PlanStats::default()
        };
        let mut calls = vec![0usize; nurse_count];
        let mut placements = Vec::with_capacity(input.visits.len());
        for (vi, v) in input.visits.iter().enumerate() {
            if v.named_nurse.is_some_and(|n| n < nurse_count) {
                stats.with_named_nurse += 1;
                if self.named_possible(vi) {
                    stats.named_nurse_possible += 1;
                }
            }
            match self.assigned[vi] {
                Some((n, start)) => {
                    stats.placed += 1;
                    calls[n] += 1;
                    if v.named_nurse == Some(n) {
                        stats.named_nurse_kept += 1;
                    }
                    if v.named_nurse == Some(n) || v.known_nurses.contains(&n) {
                        stats.known_nurse_kept += 1;
                    }
                    let late = start.saturating_sub(v.target).max(0);
                    stats.total_lateness_ms = stats.total_lateness_ms.saturating_add(late);
                    stats.max_lateness_ms = stats.max_lateness_ms.max(late);
                    placements.push(Ok(Placement { nurse: n, start }));
                }
                None => {
                    let reason = self.reason(vi);
                    stats.unplaced += 1;
                    match reason {
                        Unplaced::NoEligibleNurse => stats.no_eligible_nurse += 1,
                        Unplaced::NoRoom => stats.no_room += 1,
                        Unplaced::WindowPassed => stats.window_passed += 1,
                    }
                    placements.push(Err(reason));
                }
            }
        }
        let on_shift: Vec<usize> = self
            .nurses
            .iter()
            .zip(&calls)
            .filter(|(ns, _)| !ns.segs.is_empty())
            .map(|(_, &c)| c)
            .collect();
        stats.nurses_on_shift = on_shift.len();
        stats.min_calls = on_shift.iter().copied().min().unwrap_or(0);
        stats.max_calls = on_shift.iter().copied().max().unwrap_or(0);
        stats.mean_calls = if on_shift.is_empty() {
            0.0
        } else {
            on_shift.iter().sum::<usize>() as f64 / on_shift.len() as f64
        };
        Plan { placements, stats }
    }
}

// ---------------------------------------------------------------------------
// The verifier
// ---------------------------------------------------------------------------

/// Whether `[start, end)` lies inside the union of `shifts`.
fn within_shifts(shifts: &[(i64, i64)], start: i128, end: i128) -> bool {
    let mut covered = start;
    while covered < end {
        let reach = shifts
            .iter()
            .filter(|&&(a, b)| i128::from(a) <= covered && i128::from(b) > covered)
            .map(|&(_, b)| i128::from(b))
            .max();
        match reach {
            Some(r) => covered = r,
            None => return false,
        }
    }
    true
}

/// Checks every hard rule of `plan` against `input`, independently of how
/// the plan was made. An empty list means the plan is valid.
pub fn check(input: &PlanInput, plan: &Plan) -> Vec<Violation> {
    #[derive(Clone, Copy)]
    enum Who {
        Visit(usize),
        Fixed(usize),
    }
    let mut out = Vec::new();
    if plan.placements.len() != input.visits.len() {
        out.push(Violation::PlacementCount {
            expected: input.visits.len(),
            found: plan.placements.len(),
        });
    }
    let t = i128::from(input.turnaround.max(0));
    let mut taken: Vec<Vec<(i128, i128, Who)>> = vec![Vec::new(); input.nurses.len()];
    for (visit, (v, result)) in input.visits.iter().zip(&plan.placements).enumerate() {
        let Ok(p) = result else {
            continue;
        };
        let Some(nurse) = input.nurses.get(p.nurse) else {
            out.push(Violation::UnknownNurse {
                visit,
                nurse: p.nurse,
            });
            continue;
        };
        if let Some(pinned) = v.pinned {
            if pinned != p.nurse {
                out.push(Violation::PinBroken {
                    visit,
                    pinned,
                    nurse: p.nurse,
                });
            }
        }
        if v.language & !nurse.languages != 0 {
            out.push(Violation::Language {
                visit,
                nurse: p.nurse,
            });
        }
        let missing = v.skills & !nurse.skills;
        if missing != 0 {
            out.push(Violation::Skills {
                visit,
                nurse: p.nurse,
                missing,
            });
        }
        let start = i128::from(p.start);
        let end = start + i128::from(v.length);
        if v.length <= 0 || start < i128::from(v.window_start) || end > i128::from(v.window_end) {
            out.push(Violation::OutsideWindow {
                visit,
                start: p.start,
            });
        }
        if p.start < input.not_before {
            out.push(Violation::TooEarly {
                visit,
                start: p.start,
            });
        }
        if v.length > 0 {
            if !within_shifts(&nurse.shifts, start, end) {
                out.push(Violation::OffShift {
                    visit,
                    nurse: p.nurse,
                    start: p.start,
                });
            }
            taken[p.nurse].push((start, end, Who::Visit(visit)));
        }
    }
    for (i, b) in input.fixed.iter().enumerate() {
        if b.end > b.start {
            if let Some(list) = taken.get_mut(b.nurse) {
                list.push((i128::from(b.start), i128::from(b.end), Who::Fixed(i)));
            }
        }
    }
    for (nurse, mut list) in taken.into_iter().enumerate() {
        list.sort_by_key(|&(s, e, _)| (s, e));
        let mut active: Vec<(i128, i128, Who)> = Vec::new();
        for item in list {
            active.retain(|a| a.1 + t > item.0);
            for a in &active {
                match (a.2, item.2) {
                    (Who::Fixed(_), Who::Fixed(_)) => {}
                    (Who::Visit(visit), Who::Fixed(fixed))
                    | (Who::Fixed(fixed), Who::Visit(visit)) => {
                        out.push(Violation::OverlapsFixed {
                            visit,
                            nurse,
                            fixed,
                        })
                    }
                    (Who::Visit(x), Who::Visit(y)) => out.push(Violation::Overlap {
                        visit: x.min(y),
                        other: x.max(y),
                        nurse,
                    }),
                }
            }
            active.push(item);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Synthetic instances
// ---------------------------------------------------------------------------

/// A small deterministic random source (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// A deterministic day of a national service, for measuring the planner:
/// `clients` clients with three visits each (targets spread over 07:00-21:00
/// in proportion to the nurses on shift, windows of target ±30 or ±60 min,
/// calls of 5-15 min), `shifts` nurses on shift (morning 07-15, evening
/// 13-21, day 08-16) plus about 3/7 as many off duty, so that a client's
/// named nurse is on shift about 70 % of the time. Languages are Finnish
/// (bit 1, 90 % of clients) and Swedish (bit 2); some nurses speak both.
/// Four skills; most visits need none. A few visits are pinned to their
/// named nurse and a few nurses have kept calls. Turnaround is two minutes.
pub fn synthetic_instance(seed: u64, clients: usize, shifts: usize) -> PlanInput {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    // 2026-01-15 00:00 UTC.
    const DAY: i64 = 1_768_435_200_000;
    // (start hour, end hour, share in percent)
    const PATTERNS: [(i64, i64, u64); 3] = [(7, 15, 45), (13, 21, 40), (8, 16, 15)];

    let mut rng = SplitMix64(seed);
    let pick_pattern = |rng: &mut SplitMix64| {
        let mut r = rng.below(100);
        for &(s, e, share) in &PATTERNS {
            if r < share {
                return (DAY + s * HOUR, DAY + e * HOUR);
            }
            r -= share;
        }
        (DAY + 7 * HOUR, DAY + 15 * HOUR)
    };

    let off_duty = shifts * 3 / 7;
    let mut nurses = Vec::with_capacity(shifts + off_duty);
    for i in 0..shifts + off_duty {
        let r = rng.below(100);
        let languages = if r < 84 {
            1
        } else if r < 96 {
            3
        } else {
            2
        };
        let skills = (0..4).fold(0u64, |acc, bit| {
            if rng.percent(25) {
                acc | (1 << bit)
            } else {
                acc
            }
        });
        let shifts = if i < shifts {
            vec![pick_pattern(&mut rng)]
        } else {
            Vec::new()
        };
        nurses.push(PlanNurse {
            languages,
            skills,
            shifts,
        });
    }

    // Nurses able to serve each (language, skill) need.
    let needs: Vec<(u8, u64)> = [1u8, 2]
        .iter()
        .flat_map(|&l| [0u64, 1, 2, 4, 8].map(|s| (l, s)))
        .collect();
    let able: Vec<Vec<usize>> = needs
        .iter()
        .map(|&(l, s)| {
            nurses
                .iter()
                .enumerate()
                .filter(|(_, n)| {
                    fits(
                        n.languages,
                        n.skills,
                        &PlanVisit {
                            language: l,
                            skills: s,
                            ..PlanVisit::default()
                        },
                    )
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect();

    let mut fixed = Vec::new();
    for (i, n) in nurses.iter().enumerate() {
        if let Some(&(s, e)) = n.shifts.first() {
            if rng.percent(1) {
                let quarters = (e - s - HOUR) / (15 * MIN);
                let start =
                    s + 15 * MIN * i64::try_from(rng.below(quarters.max(1) as u64)).unwrap_or(0);
                fixed.push(Busy {
                    nurse: i,
                    start,
                    end: start + 20 * MIN,
                });
            }
        }
    }

    let mut visits = Vec::with_capacity(clients * 3);
    for _ in 0..clients {
        let language = if rng.percent(90) { 1u8 } else { 2 };
        let skills = if rng.percent(12) {
            1u64 << rng.below(4)
        } else {
            0
        };
        let slot = needs
            .iter()
            .position(|&x| x == (language, skills))
            .unwrap_or(0);
        let pool = &able[slot];
        let named_nurse = (!pool.is_empty()).then(|| pool[rng.index(pool.len())]);
        let mut known_nurses = Vec::new();
        for _ in 0..rng.below(3) {
            if pool.is_empty() {
                break;
            }
            let k = pool[rng.index(pool.len())];
            if Some(k) != named_nurse && !known_nurses.contains(&k) {
                known_nurses.push(k);
            }
        }
        let mut targets: Vec<i64> = (0..3)
            .map(|_| {
                let (s, e) = pick_pattern(&mut rng);
                let slots = (e - s - 20 * MIN) / (5 * MIN);
                s + 5 * MIN * i64::try_from(rng.below(slots.max(1) as u64)).unwrap_or(0)
            })
            .collect();
        targets.sort_unstable();
        for target in targets {
            let length = (5 + i64::try_from(rng.below(11)).unwrap_or(0)) * MIN;
            let half = if rng.percent(50) { 30 * MIN } else { 60 * MIN };
            let pinned = named_nurse.filter(|&n| {
                rng.percent(1)
                    && nurses[n]
                        .shifts
                        .iter()
                        .any(|&(s, e)| s <= target && target + length <= e)
            });
            visits.push(PlanVisit {
                window_start: target - half,
                window_end: target + half,
                target,
                length,
                language,
                skills,
                named_nurse,
                known_nurses: known_nurses.clone(),
                pinned,
            });
        }
    }

    PlanInput {
        nurses,
        visits,
        fixed,
        turnaround: 2 * MIN,
        not_before: i64::MIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn nurse(languages: u8, skills: u64, shifts: &[(i64, i64)]) -> PlanNurse {
        PlanNurse {
            languages,
            skills,
            shifts: shifts.to_vec(),
        }
    }

    /// A Finnish visit with a window of ±`half` around `target`.
    fn visit(target: i64, half: i64, length: i64) -> PlanVisit {
        PlanVisit {
            window_start: target - half,
            window_end: target + half,
            target,
            length,
            language: 1,
            ..PlanVisit::default()
        }
    }

    /// A Finnish visit that must start exactly at `target`.
    fn exact(target: i64, length: i64) -> PlanVisit {
        PlanVisit {
            window_end: target + length,
            ..visit(target, 0, length)
        }
    }

    fn input(nurses: Vec<PlanNurse>, visits: Vec<PlanVisit>) -> PlanInput {
        PlanInput {
            nurses,
            visits,
            ..PlanInput::default()
        }
    }

    fn placed(plan: &Plan, i: usize) -> Placement {
        match plan.placements[i] {
            Ok(p) => p,
            Err(e) => panic!("visit {i} unplaced: {e}"),
        }
    }

    fn assert_valid(input: &PlanInput, plan: &Plan) {
        let violations = check(input, plan);
        assert!(
            violations.is_empty(),
            "violations: {}",
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    // --- brute-force reference of the rules, for the properties ---------

    fn eff_window(input: &PlanInput, v: &PlanVisit) -> Option<(i128, i128)> {
        if v.length <= 0 {
            return None;
        }
        let lo = i128::from(v.window_start.max(input.not_before));
        let hi = i128::from(v.window_end) - i128::from(v.length);
        (lo <= hi).then_some((lo, hi))
    }

    fn may_take(input: &PlanInput, v: &PlanVisit, n: usize) -> bool {
        let Some(nurse) = input.nurses.get(n) else {
            return false;
        };
        v.pinned.is_none_or(|p| p == n)
            && v.language & !nurse.languages == 0
            && v.skills & !nurse.skills == 0
    }

    /// Calls and fixed time of nurse `n` in `plan`, leaving out visit `skip`.
    fn busy_of(input: &PlanInput, plan: &Plan, n: usize, skip: usize) -> Vec<(i128, i128)> {
        let mut out: Vec<(i128, i128)> = input
            .fixed
            .iter()
            .filter(|b| b.nurse == n && b.end > b.start)
            .map(|b| (i128::from(b.start), i128::from(b.end)))
            .collect();
        for (i, (v, r)) in input.visits.iter().zip(&plan.placements).enumerate() {
            if let Ok(p) = r {
                if p.nurse == n && i != skip {
                    out.push((
                        i128::from(p.start),
                        i128::from(p.start) + i128::from(v.length),
                    ));
                }
            }
        }
        out
    }

    /// Whether nurse `n` could take visit `vi` at all (ignoring busy time),
    /// or, with `busy`, with that busy time in the way.
    fn could_take(input: &PlanInput, vi: usize, n: usize, busy: Option<&[(i128, i128)]>) -> bool {
        let v = &input.visits[vi];
        let Some((lo, hi)) = eff_window(input, v) else {
            return false;
        };
        if !may_take(input, v, n) {
            return false;
        }
        let len = i128::from(v.length);
        let t = i128::from(input.turnaround.max(0));
        let shifts = &input.nurses[n].shifts;
        let mut starts = vec![lo];
        starts.extend(shifts.iter().map(|s| i128::from(s.0)));
        if let Some(busy) = busy {
            starts.extend(busy.iter().map(|b| b.1 + t));
        }
        starts
            .into_iter()
            .filter(|s| *s >= lo && *s <= hi)
            .any(|s| {
                within_shifts(shifts, s, s + len)
                    && busy
                        .is_none_or(|busy| busy.iter().all(|b| s + len + t <= b.0 || b.1 + t <= s))
            })
    }

    // --- properties -------------------------------------------------------

    fn arb_nurse() -> impl Strategy<Value = PlanNurse> {
        (
            0u8..4,
            0u64..4,
            prop::collection::vec((0i64..200, -10i64..120), 0..3),
        )
            .prop_map(|(languages, skills, raw)| PlanNurse {
                languages,
                skills,
                shifts: raw.into_iter().map(|(s, l)| (s, s + l)).collect(),
            })
    }

    fn arb_visit() -> impl Strategy<Value = PlanVisit> {
        (
            (0i64..220, -10i64..80, -5i64..30, -2i64..32),
            prop_oneof![4 => Just(1u8), 2 => Just(2u8), 1 => Just(0u8), 1 => Just(3u8)],
            prop_oneof![3 => Just(0u64), 1 => 1u64..4],
            prop::option::weighted(0.5, 0usize..10),
            prop::collection::vec(0usize..10, 0..3),
            prop::option::weighted(0.15, 0usize..10),
        )
            .prop_map(
                |((start, width, target_off, length), language, skills, named, known, pinned)| {
                    PlanVisit {
                        window_start: start,
                        window_end: start + width,
                        target: start + target_off,
                        length,
                        language,
                        skills,
                        named_nurse: named,
                        known_nurses: known,
                        pinned,
                    }
                },
            )
    }

    /// Random small instances. Times are multiplied by a random scale so
    /// that the free-time index is sometimes exact and sometimes coarse and
    /// out of step with the calls.
    fn arb_input() -> impl Strategy<Value = PlanInput> {
        (
            prop::collection::vec(arb_nurse(), 1..=8),
            prop::collection::vec(arb_visit(), 0..=40),
            prop::collection::vec((0usize..10, 0i64..220, -5i64..40), 0..6),
            prop_oneof![Just(0i64), 0i64..6, Just(-3i64)],
            prop_oneof![2 => Just(i64::MIN), 1 => 0i64..120],
            prop_oneof![Just(1i64), Just(7), Just(13)],
        )
            .prop_map(|(nurses, visits, fixed, turnaround, not_before, k)| {
                let sc = |x: i64| x * k;
                PlanInput {
                    nurses: nurses
                        .into_iter()
                        .map(|n| PlanNurse {
                            shifts: n.shifts.iter().map(|&(a, b)| (sc(a), sc(b))).collect(),
                            ..n
                        })
                        .collect(),
                    visits: visits
                        .into_iter()
                        .map(|v| PlanVisit {
                            window_start: sc(v.window_start),
                            window_end: sc(v.window_end),
                            target: sc(v.target),
                            length: sc(v.length),
                            ..v
                        })
                        .collect(),
                    fixed: fixed
                        .into_iter()
                        .map(|(nurse, start, len)| Busy {
                            nurse,
                            start: sc(start),
                            end: sc(start + len),
                        })
                        .collect(),
                    turnaround: sc(turnaround),
                    not_before: if not_before == i64::MIN {
                        i64::MIN
                    } else {
                        sc(not_before)
                    },
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_plans_keep_every_hard_rule(input in arb_input()) {
            let plan = plan(&input);
            let violations = check(&input, &plan);
            prop_assert!(violations.is_empty(), "{:?}", violations);
            let s = &plan.stats;
            prop_assert_eq!(plan.placements.len(), input.visits.len());
            prop_assert_eq!(s.visits, input.visits.len());
            prop_assert_eq!(s.placed + s.unplaced, s.visits);
            prop_assert_eq!(s.placed, plan.placements.iter().filter(|r| r.is_ok()).count());
            prop_assert_eq!(s.no_eligible_nurse + s.no_room + s.window_passed, s.unplaced);
            prop_assert!(s.named_nurse_kept <= s.named_nurse_possible);
            prop_assert!(s.named_nurse_possible <= s.with_named_nurse);
            prop_assert!(s.named_nurse_kept <= s.known_nurse_kept);
            prop_assert!(s.known_nurse_kept <= s.placed);
            prop_assert!(s.min_calls <= s.max_calls);
            let mut total = 0i64;
            let mut max = 0i64;
            let mut kept = 0;
            let mut familiar = 0;
            for (v, r) in input.visits.iter().zip(&plan.placements) {
                if let Ok(p) = r {
                    let late = (p.start - v.target).max(0);
                    total += late;
                    max = max.max(late);
                    kept += usize::from(v.named_nurse == Some(p.nurse));
                    familiar += usize::from(
                        v.named_nurse == Some(p.nurse) || v.known_nurses.contains(&p.nurse),
                    );
                }
            }
            prop_assert_eq!(s.total_lateness_ms, total);
            prop_assert_eq!(s.max_lateness_ms, max);
            prop_assert_eq!(s.named_nurse_kept, kept);
            prop_assert_eq!(s.known_nurse_kept, familiar);
            let on_shift: Vec<usize> = (0..input.nurses.len())
                .filter(|&n| input.nurses[n].shifts.iter().any(|s| s.0 < s.1))
                .collect();
            prop_assert_eq!(s.nurses_on_shift, on_shift.len());
            let placed_on = |n: usize| {
                plan.placements.iter().filter(|r| matches!(r, Ok(p) if p.nurse == n)).count()
            };
            prop_assert_eq!(s.max_calls, on_shift.iter().map(|&n| placed_on(n)).max().unwrap_or(0));
            prop_assert_eq!(s.min_calls, on_shift.iter().map(|&n| placed_on(n)).min().unwrap_or(0));
        }

        /// Reasons are right, nothing placeable is left out, named nurses
        /// with room are kept.
        #[test]
        fn random_plans_are_maximal_and_keep_named_nurses(input in arb_input()) {
            let plan = plan(&input);
            let nurses = input.nurses.len();
            let mut possible = 0;
            for (vi, v) in input.visits.iter().enumerate() {
                let named_ok = v.named_nurse.is_some_and(|n| n < nurses && could_take(&input, vi, n, None));
                possible += usize::from(named_ok);
                match plan.placements[vi] {
                    Err(Unplaced::WindowPassed) => {
                        prop_assert!(eff_window(&input, v).is_none(), "visit {} has a window", vi);
                    }
                    Err(Unplaced::NoEligibleNurse) => {
                        prop_assert!(eff_window(&input, v).is_some());
                        prop_assert!((0..nurses).all(|n| !could_take(&input, vi, n, None)),
                            "visit {} had an eligible nurse on shift", vi);
                    }
                    Err(Unplaced::NoRoom) => {
                        prop_assert!((0..nurses).any(|n| could_take(&input, vi, n, None)));
                        for n in 0..nurses {
                            let busy = busy_of(&input, &plan, n, vi);
                            prop_assert!(!could_take(&input, vi, n, Some(&busy)),
                                "visit {} fits nurse {} but was left out", vi, n);
                        }
                    }
                    Ok(p) => {
                        if let Some(named) = v.named_nurse {
                            if named != p.nurse && named < nurses {
                                let busy = busy_of(&input, &plan, named, vi);
                                prop_assert!(!could_take(&input, vi, named, Some(&busy)),
                                    "visit {} could have gone to its named nurse {}", vi, named);
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(plan.stats.named_nurse_possible, possible);
        }
    }

    // --- the verifier catches every kind of violation ---------------------

    #[test]
    fn check_catches_every_kind_of_violation() {
        let base = PlanInput {
            nurses: vec![nurse(1, 1, &[(0, 100)]), nurse(2, 0, &[(0, 100)])],
            visits: vec![
                PlanVisit {
                    skills: 1,
                    pinned: Some(0),
                    ..visit(20, 20, 10)
                },
                PlanVisit {
                    window_start: 0,
                    window_end: 120,
                    ..visit(20, 0, 10)
                },
            ],
            fixed: vec![Busy {
                nurse: 0,
                start: 60,
                end: 70,
            }],
            turnaround: 5,
            not_before: 0,
        };
        let with = |p: Vec<Result<Placement, Unplaced>>| Plan {
            placements: p,
            stats: PlanStats::default(),
        };
        let at = |nurse: usize, start: i64| Ok(Placement { nurse, start });

        let good = with(vec![at(0, 10), at(0, 25)]);
        assert!(check(&base, &good).is_empty(), "{:?}", check(&base, &good));
        let unplaced = with(vec![Err(Unplaced::NoRoom), Err(Unplaced::NoRoom)]);
        assert!(check(&base, &unplaced).is_empty());

        type Case = (&'static str, PlanInput, Plan, fn(&Violation) -> bool);
        let cases: Vec<Case> = vec![
            ("count", base.clone(), with(vec![at(0, 10)]), |v| {
                matches!(
                    v,
                    Violation::PlacementCount {
                        expected: 2,
                        found: 1
                    }
                )
            }),
            (
                "unknown nurse",
                base.clone(),
                with(vec![at(0, 10), at(7, 30)]),
                |v| matches!(v, Violation::UnknownNurse { visit: 1, nurse: 7 }),
            ),
            ("pin", base.clone(), with(vec![at(1, 10), at(0, 30)]), |v| {
                matches!(
                    v,
                    Violation::PinBroken {
                        visit: 0,
                        pinned: 0,
                        nurse: 1
                    }
                )
            }),
            (
                "language",
                base.clone(),
                with(vec![at(0, 10), at(1, 30)]),
                |v| matches!(v, Violation::Language { visit: 1, nurse: 1 }),
            ),
            (
                "skills",
                PlanInput {
                    visits: vec![
                        base.visits[1].clone(),
                        PlanVisit {
                            skills: 2,
                            ..base.visits[1].clone()
                        },
                    ],
                    ..base.clone()
                },
                with(vec![at(0, 10), at(0, 30)]),
                |v| {
                    matches!(
                        v,
                        Violation::Skills {
                            visit: 1,
                            nurse: 0,
                            missing: 2
                        }
                    )
                },
            ),
            (
                "window",
                base.clone(),
                with(vec![at(0, 35), at(0, 10)]),
                |v| {
                    matches!(
                        v,
                        Violation::OutsideWindow {
                            visit: 0,
                            start: 35
                        }
                    )
                },
            ),
            (
                "zero length",
                PlanInput {
                    visits: vec![
                        base.visits[0].clone(),
                        PlanVisit {
                            length: 0,
                            ..base.visits[1].clone()
                        },
                    ],
                    ..base.clone()
                },
                with(vec![at(0, 10), at(0, 30)]),
                |v| matches!(v, Violation::OutsideWindow { visit: 1, .. }),
            ),
            (
                "not before",
                PlanInput {
                    not_before: 15,
                    ..base.clone()
                },
                with(vec![at(0, 10), at(0, 30)]),
                |v| {
                    matches!(
                        v,
                        Violation::TooEarly {
                            visit: 0,
                            start: 10
                        }
                    )
                },
            ),
            (
                "off shift",
                base.clone(),
                with(vec![at(0, 10), at(0, 95)]),
                |v| {
                    matches!(
                        v,
                        Violation::OffShift {
                            visit: 1,
                            nurse: 0,
                            start: 95
                        }
                    )
                },
            ),
            (
                "gap between shifts",
                PlanInput {
                    nurses: vec![nurse(1, 1, &[(0, 50), (52, 100)]), base.nurses[1].clone()],
                    ..base.clone()
                },
                with(vec![at(0, 10), at(0, 45)]),
                |v| {
                    matches!(
                        v,
                        Violation::OffShift {
                            visit: 1,
                            nurse: 0,
                            start: 45
                        }
                    )
                },
            ),
            (
                "overlaps fixed",
                base.clone(),
                with(vec![at(0, 10), at(0, 55)]),
                |v| {
                    matches!(
                        v,
                        Violation::OverlapsFixed {
                            visit: 1,
                            nurse: 0,
                            fixed: 0
                        }
                    )
                },
            ),
            (
                "turnaround before fixed",
                base.clone(),
                with(vec![at(0, 10), at(0, 46)]),
                |v| {
                    matches!(
                        v,
                        Violation::OverlapsFixed {
                            visit: 1,
                            nurse: 0,
                            fixed: 0
                        }
                    )
                },
            ),
            (
                "turnaround after fixed",
                base.clone(),
                with(vec![at(0, 10), at(0, 74)]),
                |v| {
                    matches!(
                        v,
                        Violation::OverlapsFixed {
                            visit: 1,
                            nurse: 0,
                            fixed: 0
                        }
                    )
                },
            ),
            (
                "overlap",
                base.clone(),
                with(vec![at(0, 10), at(0, 15)]),
                |v| {
                    matches!(
                        v,
                        Violation::Overlap {
                            visit: 0,
                            other: 1,
                            nurse: 0
                        }
                    )
                },
            ),
            (
                "same start",
                base.clone(),
                with(vec![at(0, 10), at(0, 10)]),
                |v| {
                    matches!(
                        v,
                        Violation::Overlap {
                            visit: 0,
                            other: 1,
                            nurse: 0
                        }
                    )
                },
            ),
            (
                "turnaround",
                base.clone(),
                with(vec![at(0, 10), at(0, 22)]),
                |v| {
                    matches!(
                        v,
                        Violation::Overlap {
                            visit: 0,
                            other: 1,
                            nurse: 0
                        }
                    )
                },
            ),
        ];
        for (name, input, plan, expected) in cases {
            let found = check(&input, &plan);
            assert!(
                found.iter().any(expected),
                "{name}: not caught, got {found:?}"
            );
            for v in &found {
                assert!(!v.to_string().is_empty());
            }
        }
        // Exactly the turnaround is fine.
        assert!(check(&base, &with(vec![at(0, 10), at(0, 25)])).is_empty());
        assert!(check(&base, &with(vec![at(0, 10), at(0, 45)])).is_empty());
        assert!(check(&base, &with(vec![at(0, 10), at(0, 75)])).is_empty());
    }

    // --- behaviour ---------------------------------------------------------

    #[test]
    fn lone_visit_starts_exactly_at_its_target() {
        let t = 8 * 60 * MIN;
        let input = input(
            vec![nurse(1, 0, &[(7 * 60 * MIN, 15 * 60 * MIN)])],
            vec![visit(t, 30 * MIN, 10 * MIN)],
        );
        let plan = plan(&input);
        assert_eq!(placed(&plan, 0), Placement { nurse: 0, start: t });
        assert_eq!(plan.stats.total_lateness_ms, 0);
        assert_valid(&input, &plan);
    }

    #[test]
    fn early_start_only_when_much_nearer_than_the_late_one() {
        let t = 600 * MIN;
        // Nurse 0 can start at most `early` before the target (their shift
        // ends), nurse 1 at least `late` after it (their shift starts).
        let case = |early: i64, late: i64| {
            let input = input(
                vec![
                    nurse(1, 0, &[(0, t - early + 10 * MIN)]),
                    nurse(1, 0, &[(t + late, 1000 * MIN)]),
                ],
                vec![visit(t, 60 * MIN, 10 * MIN)],
            );
            let plan = plan(&input);
            assert_valid(&input, &plan);
            placed(&plan, 0).start - t
        };
        assert_eq!(case(3 * MIN, 4 * MIN), 4 * MIN, "4 late beats 3 early");
        assert_eq!(case(3 * MIN, 10 * MIN), -3 * MIN, "3 early beats 10 late");
        assert_eq!(case(MIN, 2 * MIN), 2 * MIN, "2 late beats 1 early");
        assert_eq!(case(MIN, 4 * MIN), -MIN, "1 early beats 4 late");
    }

    #[test]
    fn named_nurse_is_kept_wherever_they_have_room() {
        let day = [(7 * 60 * MIN, 15 * 60 * MIN)];
        let nurses = vec![nurse(1, 0, &day), nurse(1, 0, &day), nurse(1, 0, &day)];
        let mut visits = Vec::new();
        // Generic visits first in the input, all at the same targets, so
        // that a careless order would hand the named nurse's slots away.
        for k in 0..12 {
            visits.push(visit((8 * 60 + 15 * k) * MIN, 30 * MIN, 10 * MIN));
        }
        for k in 0..12 {
            visits.push(PlanVisit {
                named_nurse: Some(k as usize % 3),
                ..visit((8 * 60 + 15 * k) * MIN, 30 * MIN, 10 * MIN)
            });
        }
        let input = input(nurses, visits);
        let plan = plan(&input);
        assert_valid(&input, &plan);
        assert_eq!(plan.stats.with_named_nurse, 12);
        assert_eq!(plan.stats.named_nurse_possible, 12);
        assert_eq!(plan.stats.named_nurse_kept, 12);
        assert_eq!(plan.stats.named_nurse_rate(), Some(1.0));
        for k in 0..12usize {
            let p = placed(&plan, 12 + k);
            assert_eq!(p.nurse, k % 3);
            assert_eq!(p.start, input.visits[12 + k].target, "named visit on time");
        }
        assert_eq!(plan.stats.placed, 24);
    }

    #[test]
    fn known_nurse_takes_over_when_the_named_one_is_off_shift() {
        let day = [(7 * 60 * MIN, 15 * 60 * MIN)];
        let t = 9 * 60 * MIN;
        let nurses = vec![
            nurse(1, 0, &[]),  // named, off shift
            nurse(1, 0, &day), // known first, but busy through the window
            nurse(1, 0, &day), // known second, has room
            nurse(1, 0, &day), // a stranger with no calls at all
        ];
        let input = PlanInput {
            nurses,
            visits: vec![PlanVisit {
                named_nurse: Some(0),
                known_nurses: vec![1, 2],
                ..visit(t, 30 * MIN, 10 * MIN)
            }],
            fixed: vec![
                Busy {
                    nurse: 1,
                    start: t - 40 * MIN,
                    end: t + 40 * MIN,
                },
                Busy {
                    nurse: 2,
                    start: t - 60 * MIN,
                    end: t - 50 * MIN,
                },
            ],
            ..PlanInput::default()
        };
        let plan = plan(&input);
        assert_valid(&input, &plan);
        assert_eq!(placed(&plan, 0), Placement { nurse: 2, start: t });
        assert_eq!(plan.stats.named_nurse_possible, 0);
        assert_eq!(plan.stats.known_nurse_kept, 1);
    }

    #[test]
    fn pins_are_respected() {
        let day = [(0, 1000 * MIN)];
        let t = 100 * MIN;
        let input = PlanInput {
            nurses: vec![nurse(1, 0, &day), nurse(1, 0, &day), nurse(2, 0, &day)],
            visits: vec![
                // Pinned to 1 though the named nurse is 0.
                PlanVisit {
                    pinned: Some(1),
                    named_nurse: Some(0),
                    ..visit(t, 30 * MIN, 10 * MIN)
                },
                // Pinned to a nurse without the language.
                PlanVisit {
                    pinned: Some(2),
                    ..visit(t, 30 * MIN, 10 * MIN)
                },
                // Pinned to a nurse who does not exist.
                PlanVisit {
                    pinned: Some(9),
                    ..visit(t, 30 * MIN, 10 * MIN)
                },
                // Pinned to nurse 1 when nurse 1 is busy all through.
                PlanVisit {
                    pinned: Some(1),
                    ..visit(500 * MIN, 30 * MIN, 10 * MIN)
                },
            ],
            fixed: vec![Busy {
                nurse: 1,
                start: 400 * MIN,
                end: 600 * MIN,
            }],
            ..PlanInput::default()
        };
        let plan = plan(&input);
        assert_valid(&input, &plan);
        assert_eq!(placed(&plan, 0), Placement { nurse: 1, start: t });
        assert_eq!(plan.placements[1], Err(Unplaced::NoEligibleNurse));
        assert_eq!(plan.placements[2], Err(Unplaced::NoEligibleNurse));
        assert_eq!(plan.placements[3], Err(Unplaced::NoRoom));
        assert_eq!(plan.stats.with_named_nurse, 1);
        assert_eq!(plan.stats.named_nurse_possible, 0, "pinned elsewhere");
    }

    #[test]
    fn sick_nurse_replan_moves_the_rest_of_the_day_to_others() {
        let h = 60 * MIN;
        let day = [(7 * h, 15 * h)];
        let nurses = vec![nurse(1, 0, &day), nurse(1, 0, &day), nurse(1, 0, &day)];
        let mut visits = Vec::new();
        for k in 0..14 {
            visits.push(PlanVisit {
                named_nurse: Some(0),
                known_nurses: vec![1],
                ..visit(7 * h + 30 * k * MIN, 30 * MIN, 15 * MIN)
            });
            visits.push(visit(7 * h + 30 * k * MIN, 30 * MIN, 15 * MIN));
        }
        let morning = PlanInput {
            nurses,
            visits,
            turnaround: 2 * MIN,
            ..PlanInput::default()
        };
        let first = plan(&morning);
        assert_valid(&morning, &first);
        assert_eq!(first.stats.unplaced, 0);

        // Nurse 0 signs off sick at 10:00.
        let sick_at = 10 * h;
        let mut cut = morning.nurses.clone();
        cut[0].shifts = vec![(7 * h, sick_at)];
        let mut fixed = Vec::new();
        let mut freed = Vec::new();
        for i in 0..first.placements.len() {
            let p = placed(&first, i);
            if p.nurse == 0 && p.start >= sick_at {
                freed.push(i);
            } else {
                fixed.push(Busy {
                    nurse: p.nurse,
                    start: p.start,
                    end: p.start + morning.visits[i].length,
                });
            }
        }
        assert!(!freed.is_empty());
        let replan_input = PlanInput {
            nurses: cut.clone(),
            visits: freed.iter().map(|&i| morning.visits[i].clone()).collect(),
            fixed,
            turnaround: morning.turnaround,
            not_before: sick_at,
        };
        let replan = plan(&replan_input);
        assert_valid(&replan_input, &replan);
        assert_eq!(replan.stats.unplaced, 0, "{}", replan.stats);
        for i in 0..freed.len() {
            assert_ne!(placed(&replan, i).nurse, 0);
        }
        assert_eq!(replan.stats.named_nurse_possible, 0);
        // The whole day, kept and replanned calls together, is valid.
        let mut whole = first.placements.clone();
        for (k, &i) in freed.iter().enumerate() {
            whole[i] = replan.placements[k];
        }
        let day_input = PlanInput {
            nurses: cut,
            ..morning.clone()
        };
        assert_valid(
            &day_input,
            &Plan {
                placements: whole,
                stats: PlanStats::default(),
            },
        );
    }

    #[test]
    fn repair_places_a_visit_the_greedy_order_leaves_out() {
        let shift = [(0, 100 * MIN)];
        let input = input(
            vec![nurse(3, 0, &shift), nurse(1, 0, &shift)],
            vec![
                // Finnish, knows the bilingual nurse: goes there first.
                PlanVisit {
                    known_nurses: vec![0],
                    ..visit(20 * MIN, 10 * MIN, 20 * MIN)
                },
                // Swedish, only the bilingual nurse can take it.
                PlanVisit {
                    language: 2,
                    ..visit(20 * MIN, 10 * MIN, 20 * MIN)
                },
            ],
        );
        let greedy = plan_with(&input, false);
        assert_valid(&input, &greedy);
        assert_eq!(greedy.placements[1], Err(Unplaced::NoRoom));
        let repaired = plan(&input);
        assert_valid(&input, &repaired);
        assert_eq!(placed(&repaired, 1).nurse, 0);
        assert_eq!(placed(&repaired, 0).nurse, 1);
        assert_eq!(repaired.stats.unplaced, 0);
    }

    #[test]
    fn repair_moves_a_call_in_time_on_its_named_nurse() {
        // The named call sits on its target in the only stretch where the
        // Swedish call fits; it moves later but stays with its named nurse,
        // though another nurse is free at its target.
        let shift = [(0, 60 * MIN)];
        let input = input(
            vec![nurse(3, 0, &shift), nurse(1, 0, &shift)],
            vec![
                PlanVisit {
                    named_nurse: Some(0),
                    window_start: 0,
                    window_end: 60 * MIN,
                    ..visit(10 * MIN, 0, 20 * MIN)
                },
                PlanVisit {
                    language: 2,
                    window_start: 0,
                    window_end: 30 * MIN,
                    ..visit(0, 0, 30 * MIN)
                },
            ],
        );
        assert_eq!(
            plan_with(&input, false).placements[1],
            Err(Unplaced::NoRoom)
        );
        let plan = plan(&input);
        assert_valid(&input, &plan);
        assert_eq!(placed(&plan, 1), Placement { nurse: 0, start: 0 });
        assert_eq!(
            placed(&plan, 0),
            Placement {
                nurse: 0,
                start: 30 * MIN
            }
        );
        assert_eq!(plan.stats.named_nurse_kept, 1);
    }

    #[test]
    fn load_is_balanced_and_specialists_are_spared() {
        let day = [(0, 1000 * MIN)];
        let nurses = vec![
            nurse(1, 0, &day),
            nurse(1, 0, &day),
            nurse(1, 0, &day),
            nurse(1, 0, &day),
        ];
        let visits = (0..20).map(|k| exact(k * 30 * MIN, 10 * MIN)).collect();
        let input = input(nurses, visits);
        let plan = plan(&input);
        assert_valid(&input, &plan);
        assert_eq!((plan.stats.min_calls, plan.stats.max_calls), (5, 5));
        assert_eq!(plan.stats.mean_calls, 5.0);

        // A bilingual nurse is left for the Swedish visit when a Finnish-only
        // nurse is just as free.
        let input = PlanInput {
            nurses: vec![nurse(3, 0, &day), nurse(1, 0, &day)],
            visits: vec![
                exact(100 * MIN, 10 * MIN),
                PlanVisit {
                    language: 2,
                    ..exact(100 * MIN, 10 * MIN)
                },
            ],
            ..PlanInput::default()
        };
        let greedy = plan_with(&input, false);
        assert_eq!(placed(&greedy, 0).nurse, 1);
        assert_eq!(placed(&greedy, 1).nurse, 0);
    }

    #[test]
    fn the_one_nurse_free_on_time_is_found_among_many_busy_ones() {
        // 300 nurses with one call each, all busy at the target; one nurse
        // with two calls elsewhere is free. Scanning by load alone would
        // give up long before reaching that nurse.
        let day = [(0, 1000 * MIN)];
        let t = 500 * MIN;
        let mut nurses = vec![nurse(1, 0, &day); 301];
        nurses.push(nurse(1, 0, &[]));
        let mut fixed: Vec<Busy> = (0..300)
            .map(|n| Busy {
                nurse: n,
                start: t - 5 * MIN,
                end: t + 20 * MIN,
            })
            .collect();
        for start in [100 * MIN, 200 * MIN] {
            fixed.push(Busy {
                nurse: 300,
                start,
                end: start + 10 * MIN,
            });
        }
        let input = PlanInput {
            nurses,
            visits: vec![visit(t, 30 * MIN, 10 * MIN)],
            fixed,
            ..PlanInput::default()
        };
        let plan = plan(&input);
        assert_valid(&input, &plan);
        assert_eq!(
            placed(&plan, 0),
            Placement {
                nurse: 300,
                start: t
            }
        );
    }

    #[test]
    fn reasons_for_unplaced_visits() {
        let day = [(0, 100 * MIN)];
        let input = PlanInput {
            nurses: vec![nurse(1, 1, &day)],
            visits: vec![
                PlanVisit {
                    language: 2,
                    ..visit(50 * MIN, 10 * MIN, 5 * MIN)
                },
                PlanVisit {
                    skills: 2,
                    ..visit(50 * MIN, 10 * MIN, 5 * MIN)
                },
                visit(200 * MIN, 10 * MIN, 5 * MIN),
                visit(0, 10 * MIN, 5 * MIN),
                visit(50 * MIN, 2 * MIN, 5 * MIN),
                visit(50 * MIN, 10 * MIN, 5 * MIN),
                visit(50 * MIN, 10 * MIN, 0),
            ],
            fixed: vec![Busy {
                nurse: 0,
                start: 30 * MIN,
                end: 70 * MIN,
            }],
            not_before: 10 * MIN,
            ..PlanInput::default()
        };
        let plan = plan(&input);
        assert_valid(&input, &plan);
        use Unplaced::*;
        let expected = [
            NoEligibleNurse, // language
            NoEligibleNurse, // skill
            NoEligibleNurse, // after the shift
            WindowPassed,    // window ends before not_before
            WindowPassed,    // window shorter than the call
            NoRoom,          // nurse busy
            WindowPassed,    // no length
        ];
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(plan.placements[i], Err(*e), "visit {i}");
        }
        assert_eq!(plan.stats.no_eligible_nurse, 3);
        assert_eq!(plan.stats.window_passed, 3);
        assert_eq!(plan.stats.no_room, 1);
    }

    #[test]
    fn odd_inputs_never_panic() {
        let extreme = PlanVisit {
            window_start: i64::MIN,
            window_end: i64::MAX,
            target: i64::MAX,
            length: i64::MAX,
            language: 255,
            skills: u64::MAX,
            named_nurse: Some(usize::MAX),
            known_nurses: vec![usize::MAX, 3, 0],
            pinned: None,
        };
        let inputs = vec![
            PlanInput::default(),
            input(vec![], vec![visit(0, 10, 5)]),
            input(
                vec![nurse(1, 0, &[(10, 10), (30, 5)])],
                vec![visit(20, 10, 5)],
            ),
            input(
                vec![nurse(255, u64::MAX, &[(i64::MIN, i64::MAX)])],
                vec![
                    extreme.clone(),
                    PlanVisit {
                        length: 1,
                        target: i64::MIN,
                        ..extreme.clone()
                    },
                    PlanVisit {
                        length: 1,
                        target: i64::MAX,
                        window_start: i64::MAX - 1,
                        ..extreme.clone()
                    },
                    PlanVisit {
                        window_start: 50,
                        window_end: 10,
                        ..visit(0, 0, 5)
                    },
                    PlanVisit {
                        length: -5,
                        ..visit(0, 100, 5)
                    },
                    PlanVisit {
                        pinned: Some(usize::MAX),
                        ..visit(0, 100, 5)
                    },
                ],
            ),
            PlanInput {
                nurses: vec![nurse(1, 0, &[(i64::MIN, i64::MAX)])],
                visits: vec![
                    PlanVisit {
                        window_start: i64::MIN,
                        window_end: i64::MIN + 10,
                        target: i64::MIN,
                        ..visit(0, 0, 3)
                    },
                    PlanVisit {
                        window_start: i64::MAX - 10,
                        window_end: i64::MAX,
                        target: i64::MAX,
                        ..visit(0, 0, 3)
                    },
                    PlanVisit {
                        window_start: i64::MAX - 10,
                        window_end: i64::MAX,
                        target: i64::MIN,
                        ..visit(0, 0, 3)
                    },
                ],
                fixed: vec![
                    Busy {
                        nurse: 0,
                        start: i64::MIN,
                        end: i64::MIN + 2,
                    },
                    Busy {
                        nurse: 5,
                        start: 0,
                        end: 10,
                    },
                    Busy {
                        nurse: 0,
                        start: 10,
                        end: -10,
                    },
                ],
                turnaround: i64::MAX,
                not_before: i64::MIN,
            },
            PlanInput {
                nurses: vec![nurse(1, 0, &[(0, 100)])],
                visits: vec![visit(50, 50, 5)],
                not_before: i64::MAX,
                turnaround: i64::MIN,
                ..PlanInput::default()
            },
        ];
        for input in inputs {
            let plan = plan(&input);
            assert_valid(&input, &plan);
            assert_eq!(plan.stats.placed + plan.stats.unplaced, input.visits.len());
            let _ = plan.stats.to_string();
        }
    }

    #[test]
    fn synthetic_instance_is_deterministic() {
        let a = synthetic_instance(7, 50, 10);
        let b = synthetic_instance(7, 50, 10);
        assert_eq!(a, b);
        assert_ne!(a, synthetic_instance(8, 50, 10));
        assert_eq!(a.visits.len(), 150);
        assert_eq!(a.nurses.iter().filter(|n| !n.shifts.is_empty()).count(), 10);
    }

    #[test]
    fn small_synthetic_day_is_planned_in_full() {
        let input = synthetic_instance(3, 1000, 103);
        let plan = plan(&input);
        assert_valid(&input, &plan);
        let s = &plan.stats;
        // With ~100 nurses a rare language and skill pair may have a single
        // nurse on shift, so a few visits can be left out; at national scale
        // none are.
        assert!(s.unplaced * 500 <= s.visits, "{s}");
        assert!(s.named_nurse_rate().unwrap_or(0.0) > 0.95, "{s}");
    }

    /// The national benchmark: one day, ~100,000 visits and 3,400 nurses on
    /// shift. Runs in release builds only (`cargo test --release`); prints
    /// the time and the figures with `--nocapture`.
    #[test]
    fn national_day_at_full_scale() {
        if cfg!(debug_assertions) {
            eprintln!("national_day_at_full_scale: run with --release");
            return;
        }
        let started = std::time::Instant::now();
        let input = synthetic_instance(2026, 33_000, 3_400);
        let built = started.elapsed();
        let started = std::time::Instant::now();
        let plan = plan(&input);
        let planned = started.elapsed();
        let started = std::time::Instant::now();
        let violations = check(&input, &plan);
        let checked = started.elapsed();
        println!(
            "national day: {} visits, {} nurses ({} on shift), {} fixed; built in {:.0} ms, planned in {:.0} ms, checked in {:.0} ms",
            input.visits.len(),
            input.nurses.len(),
            plan.stats.nurses_on_shift,
            input.fixed.len(),
            built.as_secs_f64() * 1000.0,
            planned.as_secs_f64() * 1000.0,
            checked.as_secs_f64() * 1000.0,
        );
        println!("{}", plan.stats);
        assert!(
            violations.is_empty(),
            "{:?}",
            &violations[..violations.len().min(5)]
        );
        assert!(planned.as_secs_f64() < 2.0, "planning took {planned:?}");
        assert_eq!(plan.stats.no_room, 0, "{}", plan.stats);

        // Every 68th nurse on shift signs off sick at 12:00.
        let day_start = input
            .visits
            .first()
            .map_or(0, |v| v.target - v.target % 86_400_000);
        let noon = day_start + 12 * 60 * MIN;
        let mut nurses = input.nurses.clone();
        let mut sick = vec![false; nurses.len()];
        for (n, nurse) in nurses.iter_mut().enumerate().filter(|(n, _)| n % 68 == 0) {
            if let Some(shift) = nurse.shifts.first_mut() {
                if shift.0 < noon && shift.1 > noon {
                    shift.1 = noon;
                    sick[n] = true;
                }
            }
        }
        let mut fixed = input.fixed.clone();
        let mut freed = Vec::new();
        for (i, r) in plan.placements.iter().enumerate() {
            if let Ok(p) = r {
                if sick[p.nurse] && p.start >= noon {
                    freed.push(input.visits[i].clone());
                } else {
                    fixed.push(Busy {
                        nurse: p.nurse,
                        start: p.start,
                        end: p.start + input.visits[i].length,
                    });
                }
            }
        }
        let replan_input = PlanInput {
            nurses,
            visits: freed,
            fixed,
            turnaround: input.turnaround,
            not_before: noon,
        };
        let started = std::time::Instant::now();
        let replan = super::plan(&replan_input);
        let replanned = started.elapsed();
        println!(
            "sick at noon: {} nurses, {} visits freed, {} kept calls; replanned in {:.0} ms",
            sick.iter().filter(|&&s| s).count(),
            replan_input.visits.len(),
            replan_input.fixed.len(),
            replanned.as_secs_f64() * 1000.0,
        );
        println!("{}", replan.stats);
        assert!(check(&replan_input, &replan).is_empty());
        // Only visits pinned to a nurse who is now off sick stay out.
        for (v, r) in replan_input.visits.iter().zip(&replan.placements) {
            if r.is_err() {
                assert_eq!(*r, Err(Unplaced::NoEligibleNurse));
                assert!(v.pinned.is_some_and(|p| sick[p]), "{v:?}");
            }
        }
    }
}
