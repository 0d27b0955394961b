//! Rate-limited warnings: a source that repeats itself (a neighbour streaming forgeries, a
//! flood of refused connections) gets a few log lines per window, and the next line that
//! is let through says how many were held back. Pure: time is passed in.

use std::time::{Duration, Instant};

/// Lines let through per window by [`LogThrottle::default`].
const DEFAULT_BURST: u32 = 5;
/// The window of [`LogThrottle::default`].
const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// Decides whether one more line of a repeating warning may be logged now.
#[derive(Clone, Debug)]
pub struct LogThrottle {
    burst: u32,
    window: Duration,
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new(DEFAULT_BURST, DEFAULT_WINDOW)
    }
}

impl LogThrottle {
    /// At most `burst` lines per `window` (a `burst` of 0 is taken as 1).
    pub fn new(burst: u32, window: Duration) -> Self {
        Self {
            burst: burst.max(1),
            window,
            window_start: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log this line, mentioning the `n` lines held back since the last one
    /// that was let through (see [`suppressed_note`]). `None`: hold it back (it is counted).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let expired = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= self.window);
        if expired {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < self.burst {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Lines held back and not yet reported.
    pub fn pending(&self) -> u64 {
        self.suppressed
    }
}

/// `""`, or `" (N similar warnings suppressed)"` to append to a log line.
pub fn suppressed_note(n: u64) -> String {
    match n {
        0 => String::new(),
        1 => " (1 similar warning suppressed)".into(),
        n => format!(" ({n} similar warnings suppressed)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_passes_then_lines_are_held_back_and_counted_until_the_window_ends() {
        let t0 = Instant::now();
        let mut t = LogThrottle::new(3, 100 * MS);
        let passed: Vec<_> = (0..10).map(|_| t.allow(t0)).collect();
        assert_eq!(passed[..3], [Some(0), Some(0), Some(0)]);
        assert!(passed[3..].iter().all(Option::is_none));
        assert_eq!(t.pending(), 7);
        assert_eq!(t.allow(t0 + 99 * MS), None, "still the same window");
        assert_eq!(
            t.allow(t0 + 100 * MS),
            Some(8),
            "the first line of the next window reports what was held back"
        );
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn a_quiet_source_is_never_held_back() {
        let t0 = Instant::now();
        let mut t = LogThrottle::new(1, 10 * MS);
        for i in 0..20 {
            assert_eq!(t.allow(t0 + i * 10 * MS), Some(0));
        }
    }

    #[test]
    fn a_flood_of_a_million_lines_logs_a_bounded_number() {
        let t0 = Instant::now();
        let mut t = LogThrottle::default();
        // A million warnings over 14 s: 1.4 windows of the default throttle.
        let logged = (0..1_000_000u64)
            .filter(|i| t.allow(t0 + Duration::from_micros(i * 14)).is_some())
            .count();
        assert_eq!(logged, 2 * DEFAULT_BURST as usize);
    }

    #[test]
    fn the_note_names_the_count() {
        assert_eq!(suppressed_note(0), "");
        assert_eq!(suppressed_note(1), " (1 similar warning suppressed)");
        assert_eq!(suppressed_note(42), " (42 similar warnings suppressed)");
    }
}
