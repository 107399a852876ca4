//! Plans, approvals and runs: `POST /api/migration/plans`, `GET
//! /api/migration/plans/{id}`, `POST .../approve`, `POST .../apply` and
//! `GET /api/migration/runs/{id}`.
//!
//! A plan is a dry run stored (in this process's memory) with the schema
//! fingerprint it was made on. Applying it goes through
//! `ApplierBuilder::expect_plan`, so the library itself refuses, under the
//! write lock, a schema that changed or a finding the plan did not show.
//! Approval is the API's `--allow-data-loss`, and the approver and the
//! applier of a plan must be different tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doctype_migrate::{DryRunReport, Error};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::api::{
    ApiError, ApiResult, ErrorBody, audit, authorize, authorize_change, blocking, json_body,
    read_only,
};
use super::runs::{RunState, RunStateKind, Tracker};
use super::tokens::Role;

/// How long an apply waits for the database's write lock before it
/// answers 409 `locked`.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Plans kept in memory; making more forgets the oldest.
const MAX_PLANS: usize = 100;

/// A stored plan.
pub struct StoredPlan {
    id: String,
    /// Order of creation.
    seq: u64,
    created_by: String,
    created_at: String,
    drop_orphan_columns: bool,
    report: DryRunReport,
    /// The plan as `plan --json` prints it.
    document: Value,
    needs_approval: bool,
    approved_by: Option<String>,
}

impl StoredPlan {
    fn to_json(&self) -> Value {
        let mut doc = self.document.clone();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("id".into(), json!(self.id));
            obj.insert("fingerprint".into(), json!(self.report.schema_fingerprint));
            obj.insert("needs_approval".into(), json!(self.needs_approval));
            obj.insert("approved_by".into(), json!(self.approved_by));
            obj.insert("created_by".into(), json!(self.created_by));
            obj.insert("created_at".into(), json!(self.created_at));
        }
        doc
    }
}

/// The plans of this server process.
#[derive(Default)]
pub struct Plans {
    inner: Mutex<(u64, HashMap<String, StoredPlan>)>,
}

impl Plans {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut StoredPlan) -> ApiResult<T>) -> ApiResult<T> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let plan = inner
            .1
            .get_mut(id)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such plan"))?;
        f(plan)
    }
}

/// `POST /api/migration/plans`'s optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Plan dropping the columns the DocTypes no longer declare.
    #[serde(default)]
    drop_orphan_columns: bool,
}

/// `POST .../apply`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// The run, at `GET /api/migration/runs/{id}`.
    run_id: String,
}

/// `POST /api/migration/plans` (operator, admin): a dry run, stored.
#[utoipa::path(post, path = "/api/migration/plans", tag = "plans", security(("bearer" = [])),
    request_body(content = Option<PlanRequest>, description = "Optional"),
    responses((status = 201, description = "The plan: `plan --json` plus id, fingerprint, needs_approval, approved_by, created_by, created_at", body = Object),
              (status = 401, description = "No or unknown token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let who = authorize_change(&state, &headers, client, Role::can_operate)?;
    let req: PlanRequest = json_body(&body, Some(PlanRequest::default()))?;
    let st = state.clone();
    let (report, document) = blocking(move || {
        let applier = read_only(&st)?
            .drop_orphan_columns(req.drop_orphan_columns)
            .build()?;
        let report = applier.dry_run(&st.doctypes)?;
        let view = crate::cli::output::PlanView::new(&report);
        let document: Value = serde_json::from_str(
            &crate::cli::output::plan_json(&view).map_err(ApiError::internal)?,
        )
        .map_err(ApiError::internal)?;
        Ok((report, document))
    })
    .await?;
    // Approval stands in for --allow-data-loss: needed when a finding
    // blocks without it.
    let needs_approval = report.findings.iter().any(|f| f.blocking);
    let plan = {
        let mut inner = state.plans.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        let id = format!("plan-{}", inner.0);
        let plan = StoredPlan {
            id: id.clone(),
            seq: inner.0,
            created_by: who.name.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            drop_orphan_columns: req.drop_orphan_columns,
            report,
            document,
            needs_approval,
            approved_by: None,
        };
        let json = plan.to_json();
        inner.1.insert(id, plan);
        // A long-running server keeps the newest plans only.
        while inner.1.len() > MAX_PLANS {
            let oldest = inner.1.values().min_by_key(|p| p.seq).map(|p| p.id.clone());
            if let Some(oldest) = oldest {
                inner.1.remove(&oldest);
            }
        }
        json
    };
    audit(
        &state,
        &who.name,
        "POST /api/migration/plans",
        json!({"plan": plan["id"]}),
    );
    Ok((StatusCode::CREATED, axum::Json(plan)).into_response())
}

/// `GET /api/migration/plans` (any role): every plan of this server
/// process, newest first.
#[utoipa::path(get, path = "/api/migration/plans", tag = "plans", security(("bearer" = [])),
    responses((status = 200, description = "The plans, newest first", body = Vec<Object>), (status = 401, description = "No or unknown token", body = ErrorBody)))]
pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    authorize(&state, &headers, |_| true)?;
    let mut plans: Vec<(u64, Value)> = {
        let inner = state.plans.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.1.values().map(|p| (p.seq, p.to_json())).collect()
    };
    plans.sort_by_key(|p| std::cmp::Reverse(p.0));
    let plans: Vec<Value> = plans.into_iter().map(|(_, p)| p).collect();
    Ok(axum::Json(plans).into_response())
}

/// `GET /api/migration/plans/{id}`.
#[utoipa::path(get, path = "/api/migration/plans/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "The plan")),
    responses((status = 200, description = "The plan", body = Object), (status = 401, description = "No or unknown token", body = ErrorBody), (status = 404, description = "No such plan", body = ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorize(&state, &headers, |_| true)?;
    let json = state.plans.with(&id, |p| Ok(p.to_json()))?;
    Ok(axum::Json(json).into_response())
}

/// `POST /api/migration/plans/{id}/approve` (approver, admin).
#[utoipa::path(post, path = "/api/migration/plans/{id}/approve", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "The plan")),
    responses((status = 200, description = "The plan, approved", body = Object), (status = 401, description = "No or unknown token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody), (status = 404, description = "No such plan", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn approve(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let who = authorize_change(&state, &headers, client, Role::can_approve)?;
    let json = state.plans.with(&id, |p| {
        p.approved_by = Some(who.name.clone());
        Ok(p.to_json())
    })?;
    audit(
        &state,
        &who.name,
        &format!("POST /api/migration/plans/{id}/approve"),
        json!({"plan": id}),
    );
    Ok(axum::Json(json).into_response())
}

/// `POST /api/migration/plans/{id}/apply` (operator, admin): starts the
/// run and answers 202 `{"run_id"}` once it holds the lock and validated
/// again; 409 when it could not (`locked`, `stale_plan`,
/// `reapproval_needed`, `blocked`).
#[utoipa::path(post, path = "/api/migration/plans/{id}/apply", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "The plan")),
    responses((status = 202, description = "Running: it holds the lock and validated again", body = RunStarted),
              (status = 401, description = "No or unknown token", body = ErrorBody), (status = 403, description = "Role, approval_required or separation_of_duties", body = ErrorBody), (status = 404, description = "No such plan", body = ErrorBody),
              (status = 409, description = "stale_plan, reapproval_needed, locked or blocked; nothing written", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn apply(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let who = authorize_change(&state, &headers, client, Role::can_operate)?;
    let action = format!("POST /api/migration/plans/{id}/apply");
    let (report, approved, drop_orphans) = state.plans.with(&id, |p| {
        if p.approved_by.as_deref() == Some(who.name.as_str()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "separation_of_duties",
                format!("{:?} approved this plan and so may not apply it", who.name),
            ));
        }
        if p.needs_approval && p.approved_by.is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "approval_required",
                "this plan has findings that need approval (the API's --allow-data-loss)",
            ));
        }
        Ok((
            p.report.clone(),
            p.approved_by.is_some(),
            p.drop_orphan_columns,
        ))
    })?;
    let builder = state.builder().map_err(ApiError::internal)?;
    let Some(run_id) = state.runs.begin(&id, &who.name) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "locked",
            "another run of this server is in progress",
        ));
    };
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel();
    let gate = Arc::new(Mutex::new(Some(gate_tx)));
    let tracker = Arc::new(Tracker {
        runs: state.runs.clone(),
        id: run_id.clone(),
        validated: gate.clone(),
    });
    let st = state.clone();
    let rid = run_id.clone();
    let name = who.name.clone();
    std::thread::spawn(move || {
        // Should the engine panic, the run still ends (as failed): a run
        // left "running" would refuse every later apply and hold up
        // shutdown.
        let mut ended = EndGuard {
            runs: st.runs.clone(),
            id: rid.clone(),
            gate: gate.clone(),
            armed: true,
        };
        let result = builder
            .allow_data_loss(approved)
            .drop_orphan_columns(drop_orphans)
            .expect_plan(&report)
            .applied_by(&name)
            .lock_timeout(LOCK_WAIT)
            .observer(tracker)
            .build()
            .and_then(|mut a| a.sync_all(&st.doctypes));
        let refusal = match result {
            Ok(r) => {
                let report = serde_json::to_value(&r).ok();
                st.runs.end(&rid, RunStateKind::Completed, report, None);
                None
            }
            Err(e) => {
                let (code, message) = (code_of(&e), doctype_migrate::error_chain(&e));
                let failed = matches!(e, Error::DocTypeFailed { .. });
                let state = if failed {
                    RunStateKind::Failed
                } else {
                    RunStateKind::RolledBack
                };
                let error = json!({"code": code, "message": message});
                st.runs.end(&rid, state, None, Some(error));
                (!failed).then_some((code, message))
            }
        };
        // Ended before validating (refused, locked): the request answers
        // now, with why (a gate opened at validation ignores this).
        Tracker::open(&gate, refusal);
        ended.armed = false;
    });
    // Past validation (`None`), or refused before writing.
    if let Ok(Some((code, message))) = gate_rx.await {
        let status = if code == "engine" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::CONFLICT
        };
        audit(
            &state,
            &who.name,
            &action,
            json!({"plan": id, "refused": code}),
        );
        return Err(ApiError::new(status, code, message));
    }
    audit(
        &state,
        &who.name,
        &action,
        json!({"plan": id, "run": run_id}),
    );
    Ok((StatusCode::ACCEPTED, axum::Json(RunStarted { run_id })).into_response())
}

/// Ends a run as failed if its thread unwinds before ending it.
struct EndGuard {
    runs: Arc<super::runs::Runs>,
    id: String,
    gate: super::runs::Gate,
    armed: bool,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.runs.end(
            &self.id,
            RunStateKind::Failed,
            None,
            Some(json!({"code": "internal", "message": "the run stopped unexpectedly"})),
        );
        Tracker::open(&self.gate, None);
    }
}

/// `GET /api/migration/runs/{id}`.
#[utoipa::path(get, path = "/api/migration/runs/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = String, Path, description = "The run")),
    responses((status = 200, description = "The run", body = RunState), (status = 401, description = "No or unknown token", body = ErrorBody), (status = 404, description = "No such run", body = ErrorBody)))]
pub async fn run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorize(&state, &headers, |_| true)?;
    let run = state
        .runs
        .get(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such run"))?;
    Ok(axum::Json(run).into_response())
}

/// The API code of an error that ended a run before it wrote anything
/// (`engine` for any other).
fn code_of(e: &Error) -> &'static str {
    match e {
        Error::StalePlan { .. } => "stale_plan",
        Error::NewFindings { .. } => "reapproval_needed",
        Error::LockTimeout { .. } => "locked",
        Error::Blocked { .. } => "blocked",
        _ => "engine",
    }
}
