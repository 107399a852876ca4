//! `doctype-migrate serve`: an HTTP API over one database and one set of
//! DocTypes, for operators without a shell on the box. A client of the
//! library like the rest of the CLI: every answer comes from the public
//! API ([`api`]); tokens and roles are in [`tokens`].
//!
//! The engine is synchronous; requests that touch the database run on
//! tokio's blocking pool, so a slow one never stalls the others.

mod api;
mod dashboard;
mod limits;
mod openapi;
mod plans;
mod records;
mod rollback;
mod runs;
pub mod tokens;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use doctype_migrate::DocType;

use super::args::ServeArgs;
use super::{CliError, Outcome};

/// What every handler shares.
pub struct AppState {
    /// The database served.
    pub db: PathBuf,
    /// The DocTypes the server plans against (parsed once, at start).
    pub doctypes: Vec<DocType>,
    /// The tokens file (read again when it changes, so a revoked token
    /// stops working without a restart).
    pub tokens_path: PathBuf,
    tokens: std::sync::Mutex<(Option<std::time::SystemTime>, Arc<tokens::TokenFile>)>,
    /// Plans made through the API (kept in memory).
    pub plans: plans::Plans,
    /// Runs started through the API.
    pub runs: Arc<runs::Runs>,
    /// Backup directory, key and policy, as `apply` takes them.
    pub backup: super::args::BackupOptions,
    /// Rate limits of mutating calls.
    pub limits: limits::Limits,
}

impl AppState {
    /// A builder on the served database with the server's backup options.
    pub fn builder(&self) -> Result<doctype_migrate::ApplierBuilder, CliError> {
        super::backup::configure(
            doctype_migrate::MigrationApplier::builder(&self.db),
            &self.db,
            &self.backup,
        )
    }
}

impl AppState {
    /// The current tokens: the file is read again when its modification
    /// time changed. An unreadable file means no token is valid.
    pub fn tokens(&self) -> Arc<tokens::TokenFile> {
        let mtime = std::fs::metadata(&self.tokens_path)
            .and_then(|m| m.modified())
            .ok();
        let mut cached = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != mtime || mtime.is_none() {
            let file = tokens::TokenFile::load(&self.tokens_path, false).unwrap_or_default();
            *cached = (mtime, Arc::new(file));
        }
        cached.1.clone()
    }
}

/// `serve`: binds, prints `listening on http://ADDR` (`https://` with
/// TLS) as the first line of stdout, and serves until SIGTERM or Ctrl-C.
pub fn serve(args: &ServeArgs) -> Result<Outcome, CliError> {
    let doctypes = super::commands::load_doctypes(&args.doctypes)?;
    // The tokens file must exist and parse before anything listens.
    tokens::TokenFile::load(&args.tokens, false)?;
    let addr: SocketAddr = args
        .addr
        .parse()
        .map_err(|e| CliError::Message(format!("--addr {:?} is not an address: {e}", args.addr)))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(CliError::Message(
                "--tls-cert and --tls-key go together".into(),
            ));
        }
    };
    if !addr.ip().is_loopback() && tls.is_none() && !args.insecure_bind {
        return Err(CliError::Message(format!(
            "refusing to listen on {addr}, which is not a loopback address, without TLS: \
             bearer tokens would cross the network in the clear (give --tls-cert and \
             --tls-key, or put a TLS-terminating proxy in front and pass --insecure-bind)"
        )));
    }
    let listener = TcpListener::bind(addr)
        .map_err(|e| CliError::Message(format!("cannot listen on {addr}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| CliError::Message(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::Message(e.to_string()))?;
    let state = Arc::new(AppState {
        db: args.db.clone(),
        doctypes,
        tokens_path: args.tokens.clone(),
        tokens: std::sync::Mutex::new((None, Arc::new(tokens::TokenFile::default()))),
        plans: plans::Plans::default(),
        runs: Arc::new(runs::Runs::default()),
        backup: args.backup.clone(),
        limits: limits::Limits::new(args.rate_limit_per_minute, args.rate_limit_burst),
    });
    // A key that cannot be read is a start-up error, not a failed request.
    state.builder()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Message(format!("cannot start the server runtime: {e}")))?;
    let runs = state.runs.clone();
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    runtime.block_on(async move {
        let stopped = |e: std::io::Error| CliError::Message(format!("server stopped: {e}"));
        match tls {
            None => {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .map_err(|e| CliError::Message(format!("cannot listen on {local}: {e}")))?;
                super::write_stdout(&format!("listening on http://{local}\n"));
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
                    .map_err(stopped)
            }
            Some(config) => {
                let handle = axum_server::Handle::new();
                let stop = handle.clone();
                tokio::spawn(async move {
                    shutdown_signal().await;
                    // Requests in flight get this long to finish.
                    stop.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
                });
                super::write_stdout(&format!("listening on https://{local}\n"));
                axum_server::from_tcp_rustls(listener, config)
                    .handle(handle)
                    .serve(app)
                    .await
                    .map_err(stopped)
            }
        }
    })?;
    // A run in progress ends as it would have: committed, or rolled back
    // by the library. The process waits for it rather than leave SQLite
    // to roll back a hot journal at the next open.
    if let Some(run) = runs.current() {
        super::write_stderr(&format!("waiting for {} to finish\n", run.id));
        while runs.current().is_some() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    Ok(Outcome::default())
}

/// The certificate chain and private key (PEM files) for HTTPS, with
/// rustls's ring provider.
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, CliError> {
    // Installing twice (another call in the same process) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| CliError::Message(format!("cannot read {}: {e}", p.display())))
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    // axum-server's loader is async only in name: the PEM is parsed at once.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| CliError::Message(e.to_string()))?;
    runtime
        .block_on(axum_server::tls_rustls::RustlsConfig::from_pem(
            cert_pem, key_pem,
        ))
        .map_err(|e| {
            CliError::Message(format!(
                "TLS certificate {} or key {} is not usable: {e}",
                cert.display(),
                key.display()
            ))
        })
}

/// Resolves on SIGTERM or Ctrl-C. Requests in flight finish first (axum's
/// graceful shutdown), and a migration in flight ends atomically either
/// way: it commits or rolls back inside the library.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
