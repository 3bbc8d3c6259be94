//! Logging what clients control without letting them fill the disk.
//!
//! Two tools, used together wherever a refusal is logged:
//! - [`client_text`] cuts a client-controlled value (an `Origin` header, a session id, a
//!   user agent) to [`MAX_LOGGED_CHARS`] characters with an ellipsis and escapes control
//!   characters, so that one request writes a bounded line that cannot forge others
//!   (a newline in a header would otherwise start a fake log line).
//! - [`LogLimiter`] lets one line of a kind through per interval (a second by default)
//!   and counts the lines it held back; the next line that passes carries that count.
//!   A flood of refused requests then writes about one line per second per kind, while
//!   the services' `/metrics` still count every refusal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Characters of a client-controlled value kept in a log line.
pub const MAX_LOGGED_CHARS: usize = 64;

/// `value` as it may appear in a log line: at most [`MAX_LOGGED_CHARS`] characters (then
/// `…`), control characters escaped (`\n`, `\u{1b}`), everything else as it is.
pub fn client_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_LOGGED_CHARS * 2));
    for (i, c) in value.chars().enumerate() {
        if i == MAX_LOGGED_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A process-wide clock origin, so that a limiter's state fits in one atomic.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// No line logged yet.
const NEVER: u64 = u64::MAX;

/// At most one log line per `interval` for one kind of event (see the module docs).
/// Lock-free: a flood of refusals on many tasks never waits on it.
#[derive(Debug)]
pub struct LogLimiter {
    interval_ms: u64,
    /// Milliseconds since [`epoch`] of the last line let through, or [`NEVER`].
    last_ms: AtomicU64,
    /// Lines held back since then.
    suppressed: AtomicU64,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::per_second()
    }
}

impl LogLimiter {
    /// One line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        let ms = interval.as_millis();
        let interval_ms = if ms > u64::MAX as u128 { u64::MAX } else { ms as u64 };
        Self { interval_ms, last_ms: AtomicU64::new(NEVER), suppressed: AtomicU64::new(0) }
    }

    /// One line per second.
    pub const fn per_second() -> Self {
        Self::new(Duration::from_secs(1))
    }

    /// Whether to log this event now: `Some(n)` with the number of events held back
    /// since the last line (to report in this one), or `None` to stay silent.
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    /// [`Self::check`] at `now`, for tests.
    pub fn check_at(&self, now: Instant) -> Option<u64> {
        let now_ms = u64::try_from(now.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == NEVER || now_ms.saturating_sub(last) >= self.interval_ms;
        // Of the tasks that find the line due at once, exactly one wins the exchange.
        if due && self.last_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_cut_and_escaped() {
        assert_eq!(client_text("https://localhost:5173"), "https://localhost:5173");
        let long = "a".repeat(4096);
        let cut = client_text(&long);
        assert_eq!(cut.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(client_text(&"é".repeat(MAX_LOGGED_CHARS)), "é".repeat(MAX_LOGGED_CHARS), "exactly the limit is kept whole");
        assert_eq!(client_text("a\nINFO forged line\r\u{1b}[31m"), "a\\nINFO forged line\\r\\u{1b}[31m");
        assert_eq!(client_text(""), "");
    }

    #[test]
    fn one_line_per_interval_reports_what_it_held_back() {
        let limiter = LogLimiter::per_second();
        let t0 = epoch() + Duration::from_secs(5);
        assert_eq!(limiter.check_at(t0), Some(0), "the first line passes");
        for i in 1..1000u64 {
            assert_eq!(limiter.check_at(t0 + Duration::from_micros(i * 900)), None);
        }
        assert_eq!(limiter.check_at(t0 + Duration::from_secs(1)), Some(999));
        assert_eq!(limiter.check_at(t0 + Duration::from_millis(1500)), None);
        assert_eq!(limiter.check_at(t0 + Duration::from_secs(3)), Some(1));
    }

    #[test]
    fn concurrent_floods_let_one_line_through() {
        let limiter = std::sync::Arc::new(LogLimiter::new(Duration::from_secs(3600)));
        let passed: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let l = limiter.clone();
                    s.spawn(move || (0..10_000).filter(|_| l.check().is_some()).count() as u64)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(passed, 1);
        assert_eq!(limiter.suppressed.load(Ordering::Relaxed), 39_999);
    }
}
