//! What the server reads back for operators: `GET /api/migration/backups`,
//! `POST /api/migration/backups/verify` and `GET /api/migration/audit`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::api::{
    ApiError, ApiResult, ErrorBody, authorize, authorize_change, blocking, json_body,
};
use crate::cli::backup::{list_backups, verify_results};

/// `GET /api/migration/backups` (any role): the backups in the server's
/// backup directory, as `backup list --json` prints them, and the files
/// there that could not be read as backups.
#[utoipa::path(get, path = "/api/migration/backups", tag = "backups", security(("bearer" = [])),
    responses((status = 200, description = "dir, backups (as `backup list --json`), unreadable", body = Object), (status = 401, description = "No or unknown token", body = ErrorBody)))]
pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    authorize(&state, &headers, |_| true)?;
    let body = blocking(move || {
        let (dir, infos, unreadable) = list_backups(&state.db, state.backup.backup_dir.as_deref())
            .map_err(ApiError::internal)?;
        let unreadable: Vec<_> = unreadable
            .into_iter()
            .map(|(p, why)| json!({"path": p, "error": why}))
            .collect();
        Ok(json!({"dir": dir, "backups": infos, "unreadable": unreadable}))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// `POST /api/migration/backups/verify`'s optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// File names in the backup directory (names only, no paths); none:
    /// every backup.
    #[serde(default)]
    files: Vec<String>,
}

/// `POST /api/migration/backups/verify` (any role; it reads every byte of
/// the backups, so it counts against the rate limits): each backup
/// decrypted, decompressed and checked, as `backup verify --json`.
#[utoipa::path(post, path = "/api/migration/backups/verify", tag = "backups", security(("bearer" = [])),
    request_body(content = Option<VerifyRequest>, description = "Optional"),
    responses((status = 200, description = "ok, failed, results (as `backup verify --json`)", body = Object),
              (status = 400, description = "Not a backup file name", body = ErrorBody), (status = 401, description = "No or unknown token", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn verify(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    authorize_change(&state, &headers, client, |_| true)?;
    let req: VerifyRequest = json_body(&body, Some(VerifyRequest::default()))?;
    // A client names files in the backup directory, never a path: the
    // server reads nothing else.
    if let Some(bad) = req
        .files
        .iter()
        .find(|f| f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.'))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{bad:?} is not a backup file name"),
        ));
    }
    let body = blocking(move || {
        let dir = crate::cli::backup::backup_dir_for(&state.db, state.backup.backup_dir.as_deref());
        let files: Vec<PathBuf> = req.files.iter().map(|f| dir.join(f)).collect();
        let results = verify_results(
            &state.db,
            state.backup.backup_dir.as_deref(),
            &state.backup.how.key,
            &files,
        )
        .map_err(ApiError::internal)?;
        let failed = results.iter().filter(|r| !r.ok).count();
        Ok(json!({"ok": failed == 0, "failed": failed, "results": results}))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// `audit`'s filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Entries at or after this RFC 3339 time.
    since: Option<String>,
    /// At most this many, the newest.
    limit: Option<usize>,
}

/// `GET /api/migration/audit?since=&limit=` (any role): the database's
/// audit log entries, oldest first.
#[utoipa::path(get, path = "/api/migration/audit", tag = "backups", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, description = "Audit log entries, oldest first", body = Vec<Object>),
              (status = 400, description = "since is not an RFC 3339 time", body = ErrorBody), (status = 401, description = "No or unknown token", body = ErrorBody)))]
pub async fn audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    authorize(&state, &headers, |_| true)?;
    if let Some(since) = &q.since {
        if chrono::DateTime::parse_from_rfc3339(since).is_err() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("since={since:?} is not an RFC 3339 time"),
            ));
        }
    }
    let body = blocking(move || {
        let path = doctype_migrate::audit_log_path_for(&state.db);
        let mut entries = doctype_migrate::read_entries(&path)?;
        if let Some(since) = q
            .since
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        {
            entries.retain(|e| {
                chrono::DateTime::parse_from_rfc3339(&e.timestamp).is_ok_and(|t| t >= since)
            });
        }
        if let Some(limit) = q.limit {
            let skip = entries.len().saturating_sub(limit);
            entries.drain(..skip);
        }
        serde_json::to_value(entries).map_err(ApiError::internal)
    })
    .await?;
    Ok(axum::Json(body).into_response())
}
