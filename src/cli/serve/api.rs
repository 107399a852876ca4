//! The HTTP API: routes, the bearer-token check and the JSON error shape
//! `{"error": {"code", "message"}}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use doctype_migrate::{ApplierBuilder, MigrationApplier, Rule};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::runs::RunState;
use super::tokens::{Principal, Role};
use super::{AppState, dashboard, openapi, plans, records, rollback};

/// Request bodies larger than this get 413.
pub const BODY_LIMIT: usize = 1 << 20;

/// Every route of the API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/app.js", get(dashboard::script))
        .route("/app.css", get(dashboard::style))
        .route("/api/health", get(health))
        .route("/api/whoami", get(whoami))
        .route("/api/migration/plans", get(plans::list))
        .route("/api/migration/status", get(status))
        .route("/api/migration/history", get(history))
        .route("/api/migration/plans", post(plans::create))
        .route("/api/migration/plans/{id}", get(plans::get))
        .route("/api/migration/plans/{id}/approve", post(plans::approve))
        .route("/api/migration/plans/{id}/apply", post(plans::apply))
        .route("/api/migration/runs/{id}", get(plans::run))
        .route("/api/migration/rollback", post(rollback::rollback))
        .route("/api/migration/events", get(events))
        .route("/api/migration/backups", get(records::list))
        .route("/api/migration/backups/verify", post(records::verify))
        .route("/api/migration/audit", get(records::audit))
        .route("/api/openapi.json", get(openapi::document))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `unauthorized`, `forbidden`, `not_found`, `bad_request`,
    /// `stale_plan`, `reapproval_needed`, `locked`, `blocked`,
    /// `approval_required`, `separation_of_duties`, `rollback_refused`,
    /// `rate_limited`, `no_database`, `engine`, `internal`.
    code: String,
    /// For a person.
    message: String,
    /// More, where the code has it (a refused rollback's plan).
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

/// An API error: HTTP status, a stable code and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// More, under `error.details` (a refused rollback's plan).
    details: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds `error.details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl From<doctype_migrate::Error> for ApiError {
    fn from(e: doctype_migrate::Error) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "engine",
            doctype_migrate::error_chain(&e),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details.map(|d| *d),
            },
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The principal behind the request's bearer token, if it may do what
/// `allowed` asks of its role: 401 without a known token, 403 with one
/// whose role does not allow it.
pub fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    allowed: impl Fn(Role) -> bool,
) -> ApiResult<Principal> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send a token: Authorization: Bearer <token>",
            )
        })?;
    let principal = state
        .tokens()
        .authenticate(presented)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"))?;
    if !allowed(principal.role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} has role {}, which may not do this",
                principal.name, principal.role
            ),
        ));
    }
    Ok(principal)
}

/// [`authorize`] for a call that changes something: also counted against
/// the rate limits of the token and of the client's address.
pub fn authorize_change(
    state: &AppState,
    headers: &HeaderMap,
    client: std::net::SocketAddr,
    allowed: impl Fn(Role) -> bool,
) -> ApiResult<Principal> {
    let who = authorize(state, headers, allowed)?;
    state.limits.check(&who.name, client.ip())?;
    Ok(who)
}

/// A JSON request body; an empty body is `T::default()` where the body
/// is optional. Malformed or unknown fields: 400.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], if_empty: Option<T>) -> ApiResult<T> {
    if body.is_empty() {
        if let Some(default) = if_empty {
            return Ok(default);
        }
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("body: {e}")))
}

/// Any role may read.
fn reader(_: Role) -> bool {
    true
}

/// Runs blocking engine work on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// A read-only applier's builder on the served database (503 when the
/// file does not exist).
pub fn read_only(state: &AppState) -> ApiResult<ApplierBuilder> {
    if !state.db.exists() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_database",
            format!("database {} does not exist", state.db.display()),
        ));
    }
    Ok(MigrationApplier::builder(&state.db)
        .read_only(true)
        .no_audit_log())
}

/// Records a mutating call in the database's audit log (action
/// `api_call`): who, what, and the details.
pub fn audit(state: &AppState, who: &str, call: &str, details: Value) {
    let log = doctype_migrate::AuditLog::beside(&state.db);
    let mut details = details;
    if let Some(obj) = details.as_object_mut() {
        obj.insert("token".into(), json!(who));
        obj.insert("call".into(), json!(call));
    }
    let _ = log.record(
        doctype_migrate::Action::ApiCall,
        doctype_migrate::Level::Info,
        None,
        None,
        details,
    );
}

/// `GET /api/health`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// `GET /api/health` (no token): the process is serving.
#[utoipa::path(get, path = "/api/health", tag = "server",
    responses((status = 200, description = "The server is serving", body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Who a token is.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The token's name.
    name: String,
    /// Its role.
    role: Role,
}

/// `GET /api/whoami` (any role): the token's name and role.
#[utoipa::path(get, path = "/api/whoami", tag = "server", security(("bearer" = [])),
    responses((status = 200, description = "The token's name and role", body = WhoAmI),
              (status = 401, description = "No or unknown token", body = ErrorBody)))]
pub async fn whoami(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    let who = authorize(&state, &headers, reader)?;
    Ok(axum::Json(WhoAmI {
        name: who.name,
        role: who.role,
    })
    .into_response())
}

/// Where the database stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseState {
    /// The schema matches the server's DocTypes.
    UpToDate,
    /// Changes are pending.
    Pending,
    /// A run of this server is in progress.
    Running,
}

/// What is pending.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pending {
    /// DocTypes with changes.
    doctypes: usize,
    /// Changes, counted per change kind (`add_column`, `change_type`, ...).
    changes: BTreeMap<String, usize>,
}

/// The last batch applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastBatch {
    /// Its id.
    batch_id: String,
    /// Its history rows.
    migrations: usize,
    /// Their statuses (`completed`, `failed`, `rolled_back`, ...).
    #[schema(value_type = Vec<String>)]
    statuses: Vec<doctype_migrate::MigrationStatus>,
    /// When its last migration was recorded.
    timestamp: Option<String>,
}

/// `GET /api/migration/status`'s answer. During a run only `state` and
/// `running` are filled: the answer comes from the run's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    state: DatabaseState,
    /// The run in progress.
    running: Option<RunState>,
    pending: Option<Pending>,
    /// Whether the pending plan would be refused without approval.
    blocked: Option<bool>,
    last_batch: Option<LastBatch>,
    /// Drift findings (`CF001`): tables changed outside the engine.
    #[schema(value_type = Option<Vec<Object>>)]
    drift: Option<Vec<doctype_migrate::Finding>>,
}

/// `GET /api/migration/status`: up to date or pending (changes counted
/// per kind), the last batch, and drift findings (`CF001`); or, while a
/// run of this server is in progress, that run's progress.
#[utoipa::path(get, path = "/api/migration/status", tag = "migrations", security(("bearer" = [])),
    responses((status = 200, description = "Where the database stands", body = StatusResponse),
              (status = 401, description = "No or unknown token", body = ErrorBody)))]
pub async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    authorize(&state, &headers, reader)?;
    // During a run, from its event state: the run holds the database's
    // write lock, and this answer must not wait for it.
    if let Some(run) = state.runs.current() {
        return Ok(axum::Json(StatusResponse {
            state: DatabaseState::Running,
            running: Some(run),
            pending: None,
            blocked: None,
            last_batch: None,
            drift: None,
        })
        .into_response());
    }
    let body = blocking(move || {
        let applier = read_only(&state)?.build()?;
        let report = applier.dry_run(&state.doctypes)?;
        let mut changes: BTreeMap<String, usize> = BTreeMap::new();
        let mut doctypes = 0;
        for d in report
            .plan
            .doctypes
            .iter()
            .filter(|d| !d.changes.is_empty())
        {
            doctypes += 1;
            for c in &d.changes {
                let kind = serde_json::to_value(c.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                *changes.entry(kind).or_default() += 1;
            }
        }
        let drift = report
            .findings
            .iter()
            .filter(|f| f.rule == Rule::Cf001)
            .cloned()
            .collect();
        let history = applier.history(None)?;
        let last_batch = history.iter().rev().find_map(|r| r.batch_id.clone());
        let last_batch = last_batch.map(|id| {
            let rows: Vec<_> = history
                .iter()
                .filter(|r| r.batch_id.as_deref() == Some(id.as_str()))
                .collect();
            LastBatch {
                migrations: rows.len(),
                statuses: rows.iter().map(|r| r.status).collect(),
                timestamp: rows.last().map(|r| r.timestamp.clone()),
                batch_id: id,
            }
        });
        Ok(StatusResponse {
            state: if doctypes == 0 {
                DatabaseState::UpToDate
            } else {
                DatabaseState::Pending
            },
            running: None,
            pending: Some(Pending { doctypes, changes }),
            blocked: Some(report.blocked),
            last_batch,
            drift: Some(drift),
        })
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// `history`'s filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Only this DocType's rows.
    doctype: Option<String>,
    /// Only the newest this many.
    limit: Option<usize>,
}

/// `GET /api/migration/history?doctype=&limit=`: the rows as
/// `history --json` prints them, oldest first; `limit` keeps the newest.
#[utoipa::path(get, path = "/api/migration/history", tag = "migrations", security(("bearer" = [])),
    params(HistoryQuery),
    responses((status = 200, description = "tabMigrationHistory rows, as `history --json`", body = Vec<Object>),
              (status = 401, description = "No or unknown token", body = ErrorBody)))]
pub async fn history(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Response> {
    authorize(&state, &headers, reader)?;
    let body = blocking(move || {
        let mut rows = read_only(&state)?.build()?.history(q.doctype.as_deref())?;
        if let Some(limit) = q.limit {
            let skip = rows.len().saturating_sub(limit);
            rows.drain(..skip);
        }
        crate::cli::output::history_json(&rows).map_err(ApiError::internal)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/migration/events`: Server-Sent Events, one JSON object per
/// event of every run from now on: `{"type": "event", "run", "event":
/// {"kind", ...}}` for the library's run events (phases, rows copied,
/// backups written, each DocType verified or failed, commit, the run's
/// end), each followed by `{"type": "progress", "run", "state": RUN}` with
/// the run's state as `runs/{id}` shows it. A comment line every 15 s
/// keeps idle connections open.
#[utoipa::path(get, path = "/api/migration/events", tag = "migrations", security(("bearer" = [])),
    responses((status = 200, description = "Server-Sent Events: one JSON object per `data:` line",
               content_type = "text/event-stream", body = String),
              (status = 401, description = "No or unknown token", body = ErrorBody)))]
pub async fn events(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio_stream::StreamExt;
    authorize(&state, &headers, reader)?;
    let stream = tokio_stream::wrappers::BroadcastStream::new(state.runs.subscribe()).map(|item| {
        let data = match item {
            Ok(v) => v,
            // Fell behind: say how far, and go on.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                json!({"type": "lagged", "skipped": n})
            }
        };
        Ok::<_, std::convert::Infallible>(Event::default().data(data.to_string()))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
