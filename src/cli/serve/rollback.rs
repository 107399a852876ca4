//! `POST /api/migration/rollback` (operator, admin): the CLI's `rollback`
//! over HTTP. Body: exactly one of `{"id": N}`, `{"batch": "ID"}` or
//! `{"last": true}` (with an optional `"doctype"`), and optionally
//! `"dry_run": true` and `"cascade": true`. 200 with the document
//! `rollback --json` prints; a refusal is 409 `rollback_refused`, with the
//! same reasons under `error.details`.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doctype_migrate::{Error, MigrationId, RollbackOptions, RollbackTarget};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::api::{ApiError, ApiResult, ErrorBody, audit, authorize_change, blocking, json_body};
use super::runs::RunStateKind;
use super::tokens::Role;
use crate::cli::rollback::RollbackJson;

/// What to roll back: exactly one of `id`, `batch` or `last`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// One migration, by history id.
    id: Option<i64>,
    /// A batch, by id.
    batch: Option<String>,
    /// The latest migration (of `doctype`, if given).
    #[serde(default)]
    last: bool,
    /// With `last`: of this DocType.
    doctype: Option<String>,
    /// Check and show, write nothing.
    #[serde(default)]
    dry_run: bool,
    /// Also roll back the later migrations that depend on it.
    #[serde(default)]
    cascade: bool,
}

impl RollbackRequest {
    fn target(&self) -> ApiResult<RollbackTarget> {
        match (self.id, &self.batch, self.last) {
            (Some(id), None, false) => Ok(RollbackTarget::Migration {
                id: MigrationId(id),
            }),
            (None, Some(b), false) => Ok(RollbackTarget::Batch {
                batch_id: b.clone(),
            }),
            (None, None, true) => Ok(RollbackTarget::Last {
                doctype: self.doctype.clone(),
            }),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give exactly one of \"id\", \"batch\" or \"last\": true",
            )),
        }
    }
}

/// `POST /api/migration/rollback`.
#[utoipa::path(post, path = "/api/migration/rollback", tag = "migrations", security(("bearer" = [])),
    request_body = RollbackRequest,
    responses((status = 200, description = "As `rollback --json`", body = Object),
              (status = 400, description = "Not exactly one target", body = ErrorBody), (status = 401, description = "No or unknown token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody),
              (status = 409, description = "rollback_refused (the plan under error.details) or locked; nothing written", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let who = authorize_change(&state, &headers, client, Role::can_operate)?;
    let req: RollbackRequest = json_body(&body, None)?;
    let target = req.target()?;
    let mut options = RollbackOptions::default();
    options.cascade = req.cascade;
    options.lock_timeout = super::plans::LOCK_WAIT;
    let builder = state.builder().map_err(ApiError::internal)?;
    let dry_run = req.dry_run;
    // A rollback that writes is a run: status answers from memory while
    // it holds the lock, and no apply starts meanwhile.
    let run_id = if dry_run {
        None
    } else {
        Some(state.runs.begin("rollback", &who.name).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "locked",
                "another run of this server is in progress",
            )
        })?)
    };
    let st = state.clone();
    let rid = run_id.clone();
    let name = who.name.clone();
    let result = blocking(move || {
        let outcome = (|| -> Result<(Value, bool), Error> {
            if dry_run {
                let applier = builder.read_only(true).build()?;
                let plan = applier.rollback_plan(&target, &options)?;
                return Ok((document(&plan, &[], true), plan.feasible));
            }
            let mut applier = builder.applied_by(&name).build()?;
            match applier.rollback(&target, &options) {
                Ok(r) => Ok((document(&r.plan, &r.rolled_back, false), true)),
                Err(Error::RollbackRefused { plan }) => Ok((document(&plan, &[], false), false)),
                Err(e) => Err(e),
            }
        })();
        if let Some(id) = &rid {
            let (kind, error) = match &outcome {
                Ok((_, true)) => (RunStateKind::Completed, None),
                Ok((_, false)) => (
                    RunStateKind::RolledBack,
                    Some(json!({"code": "rollback_refused", "message": "rollback refused"})),
                ),
                Err(e) => (
                    RunStateKind::Failed,
                    Some(json!({"code": "engine", "message": doctype_migrate::error_chain(e)})),
                ),
            };
            let report = outcome.as_ref().ok().map(|(d, _)| d.clone());
            st.runs.end(id, kind, report, error);
        }
        outcome.map_err(|e| match e {
            Error::LockTimeout { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "locked",
                doctype_migrate::error_chain(&e),
            ),
            e => ApiError::from(e),
        })
    })
    .await;
    let call = "POST /api/migration/rollback";
    let (doc, feasible) = match result {
        Ok(r) => r,
        Err(e) => {
            if !dry_run {
                audit(&state, &who.name, call, json!({"failed": true}));
            }
            return Err(e);
        }
    };
    if !dry_run {
        audit(
            &state,
            &who.name,
            call,
            json!({"run": run_id, "rolled_back": doc["rolled_back_any"], "refused": !feasible}),
        );
    }
    if !feasible {
        let reasons = doc["plan"]["refusals"].clone();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rollback_refused",
            format!(
                "rollback refused: {} reason(s); nothing was written",
                reasons.as_array().map_or(0, Vec::len)
            ),
        )
        .with_details(doc));
    }
    Ok((StatusCode::OK, axum::Json(doc)).into_response())
}

fn document(
    plan: &doctype_migrate::RollbackPlan,
    done: &[doctype_migrate::RolledBack],
    dry_run: bool,
) -> Value {
    serde_json::to_value(RollbackJson {
        dry_run,
        feasible: plan.feasible,
        rolled_back_any: !done.is_empty(),
        plan,
        rolled_back: done,
    })
    .unwrap_or(Value::Null)
}
