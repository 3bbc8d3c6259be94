//! Progress bars of the long batch jobs (simulating, building the cache, training), made
//! in one place so they all look and behave alike. The bar made last can be read by
//! [`latest`], so that a command can also report progress where no terminal draws it (a
//! line now and then in a log, a status file for a running service).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle, WeakProgressBar};

/// The bar made last by [`progress_bar`]; weak, so a finished job's bar is not kept alive.
static LATEST: Latest = Latest(Mutex::new(None));

/// The bar made last by [`progress_bar`] (hidden or not), while its job still holds it.
pub fn latest() -> Option<ProgressBar> {
    LATEST.get()
}

struct Latest(Mutex<Option<WeakProgressBar>>);

impl Latest {
    fn get(&self) -> Option<ProgressBar> {
        self.0.lock().ok()?.as_ref()?.upgrade()
    }

    fn remember(&self, bar: &ProgressBar) {
        if let Ok(mut latest) = self.0.lock() {
            *latest = Some(bar.downgrade());
        }
    }
}

/// A bar of `len` steps drawn on stderr, or a hidden one when `show` is false.
///
/// `template` is an indicatif template for the part after the message, e.g.
/// `"[{bar:30}] {pos}/{len} eta {eta}"`; `msg` fills `{msg}` where the template has it.
/// indicatif draws only when stderr is a terminal, so redirected output stays clean.
pub fn progress_bar(show: bool, len: u64, template: &str, msg: &str) -> ProgressBar {
    if !show {
        // Hidden bars still count, for whoever reads `latest`.
        let bar = ProgressBar::hidden();
        bar.set_length(len);
        LATEST.remember(&bar);
        return bar;
    }
    let bar = ProgressBar::new(len);
    LATEST.remember(&bar);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(msg.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_when_not_shown() {
        assert!(progress_bar(false, 10, "{msg} [{bar:30}] {pos}/{len}", "x").is_hidden());
    }

    #[test]
    fn a_shown_bar_has_its_length_and_message() {
        let bar = progress_bar(true, 10, "{msg} [{bar:30}] {pos}/{len}", "decoding frames");
        assert_eq!(bar.length(), Some(10));
        assert_eq!(bar.message(), "decoding frames");
    }

    #[test]
    fn the_latest_bar_is_readable_while_its_job_holds_it() {
        // A latest of its own: other tests make bars at the same time.
        let latest = Latest(Mutex::new(None));
        let bar = progress_bar(false, 8, "{pos}/{len}", "");
        latest.remember(&bar);
        bar.inc(3);
        let seen = latest.get().expect("the bar just made");
        assert_eq!((seen.position(), seen.length()), (3, Some(8)));
        drop((bar, seen));
        assert!(latest.get().is_none(), "a dropped bar is not kept alive");
    }
}
