//! The console's charts: per-route handler latency histograms and error counts bumped on
//! the hot path (relaxed atomics, always on), and a ring of per-second samples that a
//! sampler task fills from them and from the gateway's counters.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// How many per-second samples are kept: 15 minutes.
pub(crate) const SAMPLES: usize = 15 * 60;

/// Latency buckets: four per power of two of microseconds, up to about 70 minutes.
const BUCKETS: usize = 128;

/// Bucket of a latency in microseconds: exact below 4 µs, then four buckets per octave
/// (at most 19% wide).
fn bucket(us: u64) -> usize {
    if us < 4 {
        return usize::try_from(us).unwrap_or(0);
    }
    let log = 63 - u64::from(us.leading_zeros());
    let sub = (us >> (log - 2)) & 3;
    usize::try_from(4 * (log - 1) + sub)
        .unwrap_or(BUCKETS - 1)
        .min(BUCKETS - 1)
}

/// The upper bound (µs) of a bucket: what a percentile falling in it reports.
fn bucket_upper(index: usize) -> u64 {
    if index < 4 {
        return index as u64;
    }
    let log = (index / 4 + 1) as u32;
    let sub = (index % 4) as u64;
    ((4 + sub + 1) << (log - 2)).saturating_sub(1)
}

/// One route's latency histogram since the last sample.
struct RouteHistogram {
    key: &'static str,
    buckets: Box<[AtomicU32]>,
}

/// What the hot path records whether or not a console is open.
pub(crate) struct Metrics {
    routes: Vec<RouteHistogram>,
    /// Handler errors (error frames answered) since the start.
    errors: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
}

/// One second of the gateway.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Sample {
    /// The end of the second, epoch milliseconds.
    pub(crate) t: i64,
    /// Open connections.
    pub(crate) connections: usize,
    /// Frames read from clients in this second.
    pub(crate) frames_in: u64,
    /// Frames written to clients in this second.
    pub(crate) frames_out: u64,
    /// Error frames answered in this second.
    pub(crate) errors: u64,
    /// Handler latency of the routes that ran in this second.
    pub(crate) routes: Vec<RouteSample>,
}

/// A route's latency in one second.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RouteSample {
    pub(crate) route: &'static str,
    pub(crate) count: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
}

/// The gateway's running totals, read by the sampler once a second.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Totals {
    pub(crate) connections: usize,
    pub(crate) frames_in: u64,
    pub(crate) frames_out: u64,
}

impl Metrics {
    /// Histograms for these route keys (`$default` should be one of them).
    pub(crate) fn new(keys: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            routes: keys
                .into_iter()
                .map(|key| RouteHistogram {
                    key,
                    buckets: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
                })
                .collect(),
            errors: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
        }
    }

    /// Records one handled message: two relaxed increments.
    pub(crate) fn record(&self, route: &str, latency: Duration, error: bool) {
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(h) = self.routes.iter().find(|h| h.key == route) {
            h.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Handler errors since the start.
    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Takes this second's histograms (resetting them) and appends a sample; `previous`
    /// holds the totals of the last sample, for the per-second differences.
    pub(crate) fn sample(
        &self,
        now_ms: i64,
        totals: Totals,
        previous: &mut (Totals, u64),
    ) -> Sample {
        let errors = self.errors();
        let sample = Sample {
            t: now_ms,
            connections: totals.connections,
            frames_in: totals.frames_in.saturating_sub(previous.0.frames_in),
            frames_out: totals.frames_out.saturating_sub(previous.0.frames_out),
            errors: errors.saturating_sub(previous.1),
            routes: self.routes.iter().filter_map(take_route).collect(),
        };
        *previous = (totals, errors);
        if let Ok(mut ring) = self.samples.lock() {
            if ring.len() >= SAMPLES {
                ring.pop_front();
            }
            ring.push_back(sample.clone());
        }
        sample
    }

    /// Every kept sample, oldest first.
    pub(crate) fn history(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|ring| ring.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Empties a histogram into a route sample; `None` if the route did not run.
fn take_route(h: &RouteHistogram) -> Option<RouteSample> {
    let counts: Vec<u64> = h
        .buckets
        .iter()
        .map(|b| u64::from(b.swap(0, Ordering::Relaxed)))
        .collect();
    let count: u64 = counts.iter().sum();
    if count == 0 {
        return None;
    }
    Some(RouteSample {
        route: h.key,
        count,
        p50_us: percentile(&counts, count, 50),
        p99_us: percentile(&counts, count, 99),
    })
}

/// The `pct`th percentile of a histogram of `count` values: its bucket's upper bound.
fn percentile(counts: &[u64], count: u64, pct: u64) -> u64 {
    let rank = (count * pct).div_ceil(100).max(1);
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_upper(i);
        }
    }
    bucket_upper(counts.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bound_their_values() {
        let mut last = 0;
        for us in [
            0u64, 1, 3, 4, 5, 7, 8, 9, 15, 16, 100, 1000, 12_345, 10_000_000,
        ] {
            let b = bucket(us);
            assert!(b >= last, "{us}");
            last = b;
            assert!(
                bucket_upper(b) >= us,
                "{us} in bucket {b} ≤ {}",
                bucket_upper(b)
            );
            if b > 0 {
                assert!(bucket_upper(b - 1) < us, "{us}");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn samples_take_percentiles_per_route_and_rates() {
        let m = Metrics::new(["echo", "$default"]);
        for i in 0..100u64 {
            m.record("echo", Duration::from_micros(100 + i), false);
        }
        m.record("echo", Duration::from_millis(50), true);
        m.record("unknown", Duration::from_millis(1), false);
        let totals = Totals {
            connections: 3,
            frames_in: 110,
            frames_out: 90,
        };
        let mut prev = (Totals::default(), 0);
        let s = m.sample(1000, totals, &mut prev);
        assert_eq!(
            (s.connections, s.frames_in, s.frames_out, s.errors),
            (3, 110, 90, 1)
        );
        assert_eq!(s.routes.len(), 1);
        let echo = &s.routes[0];
        assert_eq!(echo.count, 101);
        assert!((140..=180).contains(&echo.p50_us), "{echo:?}");
        assert!((190..=250).contains(&echo.p99_us), "{echo:?}");
        let next = m.sample(2000, totals, &mut prev);
        assert_eq!((next.frames_in, next.errors), (0, 0));
        assert!(next.routes.is_empty());
        assert_eq!(m.history().len(), 2);
    }

    #[test]
    fn the_ring_keeps_fifteen_minutes() {
        let m = Metrics::new([]);
        let mut prev = (Totals::default(), 0);
        for t in 0..(SAMPLES as i64 + 10) {
            m.sample(t, Totals::default(), &mut prev);
        }
        let h = m.history();
        assert_eq!(h.len(), SAMPLES);
        assert_eq!(h[0].t, 10);
    }
}
