//! Global options (`--quiet`, `-v`, `--color`, `--lock-timeout`,
//! `--busy-timeout`) and what they resolve to for this process: whether
//! stdout and stderr get colour, how progress is shown, the log level, and
//! the timeouts given to every [`ApplierBuilder`].
//!
//! The resolved [`Settings`] are process-wide (like the tracing subscriber
//! they configure): [`init`] sets them once in [`super::run`], and the
//! commands read them with [`settings`]. This keeps the global flags out of
//! every command's signature, so a new subcommand only has to call
//! [`with_timeouts`] on its builder.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{ArgAction, Args as ClapArgs, ValueEnum};
use doctype_migrate::ApplierBuilder;

/// The values of `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the stream is a terminal and `NO_COLOR` is not set (the default).
    #[default]
    Auto,
    /// Always colour, even into a pipe or file (and despite `NO_COLOR`).
    Always,
    /// Never colour.
    Never,
}

/// Options accepted by every subcommand (before or after its name).
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct GlobalArgs {
    /// No progress and no informational output on stderr; errors and
    /// warnings still print. Stdout (the report, `--json`) is unchanged.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log to stderr: -v info, -vv debug, -vvv trace (default: warnings only).
    #[arg(long, short = 'v', global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Colour human output: auto (terminal and no NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t)]
    pub color: ColorChoice,
    /// How long to wait for the database write lock in all, in seconds
    /// (fractions allowed; default 60).
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_lock_timeout)]
    pub lock_timeout: Option<Duration>,
    /// SQLite busy timeout for each statement, in milliseconds (default 5000).
    #[arg(long, global = true, value_name = "MS")]
    pub busy_timeout: Option<u64>,
}

/// Parses `--lock-timeout`: a positive, finite number of seconds.
pub fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("must be greater than zero".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is too long"))
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing (`--quiet`).
    Off,
    /// Rate-limited plain lines (stderr is not a terminal: CI, pipes, files).
    Plain,
    /// Progress bars and a spinner (stderr is a terminal).
    Bars,
}

/// The global options resolved against this process's streams and environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--quiet`.
    pub quiet: bool,
    /// The `-v` count.
    pub verbose: u8,
    /// Whether human output on stdout is coloured.
    pub color_stdout: bool,
    /// Whether stderr (log lines) is coloured.
    pub color_stderr: bool,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// `--lock-timeout`.
    pub lock_timeout: Option<Duration>,
    /// `--busy-timeout`, as a duration.
    pub busy_timeout: Option<Duration>,
}

impl Settings {
    /// Resolves `args` for a stdout and stderr that are (or are not)
    /// terminals, with `no_color` the value of `NO_COLOR` and `dumb` whether
    /// `TERM=dumb`.
    pub fn resolve(
        args: &GlobalArgs,
        stdout_tty: bool,
        stderr_tty: bool,
        no_color: Option<&str>,
        dumb: bool,
    ) -> Settings {
        // https://no-color.org: set and non-empty disables colour.
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        let color = |tty: bool| match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color && !dumb,
        };
        let progress = if args.quiet {
            ProgressMode::Off
        } else if stderr_tty && !dumb {
            ProgressMode::Bars
        } else {
            ProgressMode::Plain
        };
        Settings {
            quiet: args.quiet,
            verbose: args.verbose,
            color_stdout: color(stdout_tty),
            color_stderr: color(stderr_tty),
            progress,
            lock_timeout: args.lock_timeout,
            busy_timeout: args.busy_timeout.map(Duration::from_millis),
        }
    }

    /// Resolves `args` for this process.
    pub fn from_env(args: &GlobalArgs) -> Settings {
        let no_color = std::env::var("NO_COLOR").ok();
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Settings::resolve(
            args,
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
            no_color.as_deref(),
            dumb,
        )
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::resolve(&GlobalArgs::default(), false, false, None, false)
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets this process's settings (the first call wins).
pub fn init(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

/// This process's settings; without [`init`] (unit tests), no colour,
/// plain progress and the library's timeouts.
pub fn settings() -> &'static Settings {
    SETTINGS.get_or_init(Settings::default)
}

/// Applies `--lock-timeout` and `--busy-timeout` to a builder (the
/// library's defaults stay when they are not given).
pub fn with_timeouts(mut builder: ApplierBuilder) -> ApplierBuilder {
    let s = settings();
    if let Some(t) = s.lock_timeout {
        builder = builder.lock_timeout(t);
    }
    if let Some(t) = s.busy_timeout {
        builder = builder.busy_timeout(t);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(color: ColorChoice, quiet: bool) -> GlobalArgs {
        GlobalArgs {
            color,
            quiet,
            ..GlobalArgs::default()
        }
    }

    #[test]
    fn colour_follows_the_flag_then_the_terminal_and_no_color() {
        let auto = args(ColorChoice::Auto, false);
        assert!(Settings::resolve(&auto, true, true, None, false).color_stdout);
        assert!(!Settings::resolve(&auto, false, true, None, false).color_stdout);
        assert!(!Settings::resolve(&auto, true, true, Some("1"), false).color_stdout);
        assert!(Settings::resolve(&auto, true, true, Some(""), false).color_stdout);
        assert!(!Settings::resolve(&auto, true, true, None, true).color_stdout);
        let always = args(ColorChoice::Always, false);
        assert!(Settings::resolve(&always, false, false, Some("1"), true).color_stdout);
        let never = args(ColorChoice::Never, false);
        assert!(!Settings::resolve(&never, true, true, None, false).color_stdout);
    }

    #[test]
    fn progress_is_bars_on_a_terminal_plain_otherwise_and_off_when_quiet() {
        let a = args(ColorChoice::Auto, false);
        let mode = |tty, dumb| Settings::resolve(&a, false, tty, None, dumb).progress;
        assert_eq!(mode(true, false), ProgressMode::Bars);
        assert_eq!(mode(false, false), ProgressMode::Plain);
        assert_eq!(mode(true, true), ProgressMode::Plain);
        let q = args(ColorChoice::Auto, true);
        assert_eq!(
            Settings::resolve(&q, true, true, None, false).progress,
            ProgressMode::Off
        );
    }

    #[test]
    fn lock_timeout_is_positive_seconds() {
        assert_eq!(parse_lock_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_lock_timeout("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "NaN", "inf", "1e300", "x", ""] {
            assert!(parse_lock_timeout(bad).is_err(), "{bad:?}");
        }
    }
}
