//! Test faults, honoured only when `PODIUM_TEST_FAULTS=1` (set in
//! `.dev.vars` by the fault tests; production never sets it). A fault rides
//! on an event's member id, so it reaches exactly the board periods that
//! event feeds and needs no side channel: `__fault:<kind>:<until ms>` makes
//! a board that meets the event fail the whole batch while its clock is
//! before `until`, after applying (in memory) the events before it. Once
//! the time has passed, the Queue's retry applies the batch normally.
//!
//! The switch (`faults_on`) is read here, beside the faults it lets
//! through, so whoever honours a fault finds the guard in the same place.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The apply returns an error.
    Fail,
    /// The apply panics (the wasm instance is reset).
    Panic,
    /// The SQLite transaction throws after its first statement.
    Transaction,
}

impl Fault {
    pub fn of(member: &str, now_ms: i64) -> Option<Fault> {
        let rest = member.strip_prefix("__fault:")?;
        let (kind, until) = rest.split_once(':')?;
        if now_ms >= until.parse::<i64>().ok()? {
            return None;
        }
        match kind {
            "fail" => Some(Fault::Fail),
            "panic" => Some(Fault::Panic),
            "txn" => Some(Fault::Transaction),
            _ => None,
        }
    }
}

/// Whether test faults are switched on (`PODIUM_TEST_FAULTS=1` in `.dev.vars`
/// or the environment). Off unless set: production never honours them.
pub fn faults_on(env: &worker::Env) -> bool {
    env.var("PODIUM_TEST_FAULTS").map(|v| v.to_string() == "1").unwrap_or(false)
        || env.secret("PODIUM_TEST_FAULTS").map(|v| v.to_string() == "1").unwrap_or(false)
}
