//! Log lines on stderr through `tracing`: warnings by default, `-v` info,
//! `-vv` debug, `-vvv` trace, `--quiet` errors only. Lines go above the
//! progress bars when those are drawn (see [`super::progress::write_stderr`]).

use std::io;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::global::Settings;

/// The most detailed level logged for these settings.
pub fn level(settings: &Settings) -> LevelFilter {
    if settings.quiet {
        return LevelFilter::ERROR;
    }
    match settings.verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the stderr subscriber (once per process; later calls do nothing).
pub fn init(settings: &Settings) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level(settings))
        .with_writer(StderrLines)
        .with_ansi(settings.color_stderr)
        .with_target(settings.verbose >= 2)
        // Seconds since start: short, and shows where the time went.
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .try_init();
}

/// Makes one [`LineBuffer`] per log event.
struct StderrLines;

impl<'a> MakeWriter<'a> for StderrLines {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::with_capacity(128))
    }
}

/// Collects one event's text and writes it to stderr in one piece when
/// dropped, above the progress bars if they are on screen.
struct LineBuffer(Vec<u8>);

impl io::Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            super::progress::write_stderr(&self.0);
        }
    }
}
