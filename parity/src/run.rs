//! Checks and the runner.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::report::{Report, Row};
use crate::target::Target;

/// What a check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// API Gateway's documented contract (or the framework's own): the target must pass.
    Contract,
    /// A behaviour AWS does not document: the probe records what the target does.
    Observation {
        /// What the local gateway does (the one place this is stated for the runner).
        local: &'static str,
    },
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A contract check passed.
    Pass(String),
    /// A contract check failed, or a probe could not observe (the detail says why).
    Fail(String),
    /// What an observation saw: a short value and a detail.
    Observed {
        /// The value compared with the local gateway's.
        value: String,
        /// What else was seen.
        detail: String,
    },
    /// Not run against this target (the reason says what is missing).
    Skipped(String),
}

impl Verdict {
    /// An observation.
    pub fn observed(value: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Observed {
            value: value.into(),
            detail: detail.into(),
        }
    }
}

/// A check's future.
pub type CheckFuture = Pin<Box<dyn Future<Output = Verdict> + Send>>;

/// One parity check.
#[derive(Clone, Copy)]
pub struct Check {
    /// `area.what`, e.g. `limits.binary_frame_1003`.
    pub name: &'static str,
    /// Contract or observation.
    pub kind: Kind,
    /// One line: what it does.
    pub about: &'static str,
    /// Waits for the idle timeout: started first, concurrently with the others.
    pub slow: bool,
    /// The probe.
    pub run: fn(Arc<Target>) -> CheckFuture,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Check {
    /// The bound on the whole check: 8 steps, plus twice the idle wait for slow ones.
    pub fn timeout(&self, target: &Target) -> Duration {
        let base = target.step() * 8;
        if self.slow {
            base + target.idle_wait() * 2
        } else {
            base
        }
    }
}

async fn run_one(target: Arc<Target>, check: Check) -> Row {
    let limit = check.timeout(&target);
    let verdict = match tokio::time::timeout(limit, (check.run)(target)).await {
        Ok(v) => v,
        Err(_) => Verdict::Fail(format!("timed out after {limit:?}")),
    };
    Row::new(&check, verdict)
}

/// Runs `checks` against `target`: slow (idle) checks start first and run concurrently
/// with the others, which run one after another (so they do not disturb each other).
/// Rows come back in the order of `checks`.
pub async fn run(target: Arc<Target>, checks: &[Check]) -> Report {
    let mut slow = Vec::new();
    for (i, check) in checks.iter().enumerate().filter(|(_, c)| c.slow) {
        slow.push((i, tokio::spawn(run_one(Arc::clone(&target), *check))));
    }
    let mut rows: Vec<(usize, Row)> = Vec::with_capacity(checks.len());
    for (i, check) in checks.iter().enumerate().filter(|(_, c)| !c.slow) {
        rows.push((i, run_one(Arc::clone(&target), *check).await));
    }
    for (i, handle) in slow {
        let row = match handle.await {
            Ok(row) => row,
            Err(e) => Row::new(
                &checks[i],
                Verdict::Fail(format!("the check panicked: {e}")),
            ),
        };
        rows.push((i, row));
    }
    rows.sort_by_key(|(i, _)| *i);
    Report::new(&target, rows.into_iter().map(|(_, r)| r).collect())
}
