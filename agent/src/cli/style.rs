//! Whether and how tables are coloured: only on a terminal, never with `NO_COLOR` or `TERM=dumb`.

use std::ffi::OsStr;
use std::io::IsTerminal;

use crate::health::Verdict;

/// A colour or weight a table cell may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    Green,
    Yellow,
    Red,
    Bold,
    Dim,
}

impl Paint {
    fn sgr(self) -> &'static str {
        match self {
            Paint::Green => "32",
            Paint::Yellow => "33",
            Paint::Red => "1;31",
            Paint::Bold => "1",
            Paint::Dim => "2",
        }
    }

    /// The colour of a verdict: PASS green, WARN yellow, FAIL red.
    pub fn of_verdict(verdict: Verdict) -> Paint {
        match verdict {
            Verdict::Pass => Paint::Green,
            Verdict::Warn => Paint::Yellow,
            Verdict::Fail => Paint::Red,
        }
    }
}

/// How text is written: with ANSI colours or plain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    /// Plain text: no escape codes at all.
    pub const PLAIN: Style = Style { colour: false };

    /// Colour when stdout is a terminal and neither `NO_COLOR` (non-empty) nor `TERM=dumb` says no.
    pub fn for_stdout() -> Style {
        Style::decide(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
    }

    /// The decision itself (see <https://no-color.org>: any non-empty `NO_COLOR` disables colour).
    pub fn decide(is_terminal: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> Style {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        let dumb = term.is_some_and(|t| t == "dumb");
        Style {
            colour: is_terminal && !no_color && !dumb,
        }
    }

    /// `text` in `paint` when colouring, else `text` unchanged.
    pub fn paint(self, text: &str, paint: Paint) -> String {
        if self.colour && !text.is_empty() {
            format!("\x1b[{}m{text}\x1b[0m", paint.sgr())
        } else {
            text.to_string()
        }
    }

    /// A verdict word in its colour.
    pub fn verdict(self, verdict: Verdict) -> String {
        self.paint(verdict.as_str(), Paint::of_verdict(verdict))
    }

    /// A section heading.
    pub fn heading(self, text: &str) -> String {
        self.paint(text, Paint::Bold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert!(Style::decide(true, None, os("xterm-256color")).colour);
        assert!(Style::decide(true, os(""), None).colour, "empty NO_COLOR");
        assert!(!Style::decide(true, os("1"), os("xterm")).colour);
        assert!(!Style::decide(true, None, os("dumb")).colour);
        assert!(!Style::decide(false, None, os("xterm")).colour);
    }

    #[test]
    fn plain_style_writes_no_escape_codes() {
        assert_eq!(Style::PLAIN.verdict(Verdict::Fail), "FAIL");
        let coloured = Style { colour: true }.verdict(Verdict::Fail);
        assert_eq!(coloured, "\x1b[1;31mFAIL\x1b[0m");
    }
}
