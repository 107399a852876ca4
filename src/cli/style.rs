//! ANSI colour for human output, when [`super::global::Settings`] says so.
//!
//! A handful of SGR codes written by hand: no dependency, and the output
//! without colour is exactly the text with the escapes left out, so text
//! rendering stays deterministic and parseable.

use std::fmt::Write as _;

use doctype_migrate::{ChangeKind, Severity};

/// What a piece of text is, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something added (green).
    Add,
    /// Something changed in place (yellow).
    Change,
    /// Something removed (red).
    Remove,
    /// A heading: a DocType and its table (bold).
    Heading,
    /// Secondary text such as SQL (dim).
    Dim,
    /// Critical or high severity, or a blocked plan (bold red).
    Severe,
    /// Medium severity (yellow).
    Warn,
}

impl Tone {
    fn sgr(self) -> &'static str {
        match self {
            Tone::Add => "32",
            Tone::Change | Tone::Warn => "33",
            Tone::Remove => "31",
            Tone::Heading => "1",
            Tone::Dim => "2",
            Tone::Severe => "1;31",
        }
    }

    /// The tone of a change: additions green, in-place changes yellow,
    /// removals red.
    pub fn of_change(kind: ChangeKind) -> Tone {
        match kind {
            ChangeKind::CreateTable
            | ChangeKind::AddColumn
            | ChangeKind::AddIndex
            | ChangeKind::AddUnique => Tone::Add,
            ChangeKind::DropTable
            | ChangeKind::DropColumn
            | ChangeKind::DropIndex
            | ChangeKind::DropUnique => Tone::Remove,
            ChangeKind::RenameColumn
            | ChangeKind::ChangeType
            | ChangeKind::ChangeNullability
            | ChangeKind::ChangeDefault
            | ChangeKind::ChangeAutoincrement => Tone::Change,
            _ => Tone::Change,
        }
    }

    /// The tone of a finding's severity: critical and high red, medium
    /// yellow, low and info plain (`None`).
    pub fn of_severity(severity: Severity) -> Option<Tone> {
        match severity {
            Severity::Critical | Severity::High => Some(Tone::Severe),
            Severity::Medium => Some(Tone::Warn),
            Severity::Low | Severity::Info => None,
            _ => None,
        }
    }
}

/// Paints text, or leaves it alone when colour is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    /// A palette that colours when `enabled`.
    pub fn new(enabled: bool) -> Palette {
        Palette { enabled }
    }

    /// No colour.
    pub fn plain() -> Palette {
        Palette { enabled: false }
    }

    /// Appends `text` to `out` in `tone` (or as is, for `None` or no colour).
    /// Escapes never span a newline, so every line stays self-contained.
    pub fn push(&self, out: &mut String, tone: Option<Tone>, text: &str) {
        match tone {
            Some(tone) if self.enabled && !text.is_empty() => {
                let _ = write!(out, "\x1b[{}m{text}\x1b[0m", tone.sgr());
            }
            _ => out.push_str(text),
        }
    }

    /// `text` in `tone`, as a new string.
    #[cfg(test)]
    pub fn paint(&self, tone: Tone, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 8);
        self.push(&mut out, Some(tone), text);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_palette_leaves_text_alone_and_colour_wraps_it() {
        assert_eq!(Palette::plain().paint(Tone::Add, "+ x"), "+ x");
        assert_eq!(
            Palette::new(true).paint(Tone::Add, "+ x"),
            "\x1b[32m+ x\x1b[0m"
        );
        assert_eq!(Palette::new(true).paint(Tone::Dim, ""), "");
        assert_eq!(Tone::of_severity(Severity::Low), None);
        assert_eq!(Tone::of_severity(Severity::High), Some(Tone::Severe));
    }
}
