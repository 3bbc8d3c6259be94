//! Progress bars of the long batch jobs (simulating, building the cache, training), made
//! in one place so they all look and behave alike.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps drawn on stderr, or a hidden one when `show` is false.
///
/// `template` is an indicatif template for the part after the message, e.g.
/// `"[{bar:30}] {pos}/{len} eta {eta}"`; `msg` fills `{msg}` where the template has it.
/// indicatif draws only when stderr is a terminal, so redirected output stays clean.
pub fn progress_bar(show: bool, len: u64, template: &str, msg: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
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
}
