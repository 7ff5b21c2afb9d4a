//! Where time-based limits read the time: the system clock, or a clock a test moves,
//! so throttles, quotas and refresh schedules are tested without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where throttles, quotas and schedules read the time: the system clock, or one a test moves.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that moves only when told ([`ManualClock`]).
    Manual(ManualClock),
}

impl Clock {
    /// A manual clock starting at `epoch_ms`, and the handle that moves it.
    pub fn manual(epoch_ms: i64) -> (Self, ManualClock) {
        let handle = ManualClock(Arc::new(AtomicI64::new(epoch_ms)));
        (Self::Manual(handle.clone()), handle)
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Self::System => chrono::Utc::now().timestamp_millis(),
            Self::Manual(m) => m.0.load(Ordering::SeqCst),
        }
    }
}

/// The handle of a [`Clock::manual`].
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `epoch_ms`.
    pub fn set_ms(&self, epoch_ms: i64) {
        self.0.store(epoch_ms, Ordering::SeqCst);
    }
}
