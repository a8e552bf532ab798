//! Remote care visits: care plans, recurrence in civil time, visit
//! generation, assignment to nurses and the visit lifecycle.

pub mod lifecycle;
pub mod recurrence;
