//! Rendering: human-readable text and the JSON contract documented in
//! docs/reference/json.md. Plan output contains nothing time- or machine-dependent, so the
//! same inputs print byte-identical text and JSON.

use std::fmt::Write as _;

use doctype_migrate::{
    ApplyReport, Approach, Change, ChangeKind, DocTypePlan, DryRunReport, Finding, HistoryRow,
    MigrationPlan, MigrationRecord, PlannedBackup, Warning,
};
use serde::Serialize;

use super::CliError;
use super::style::{Palette, Tone};

/// One DocType in plan output: its changes, SQL, orphans and findings.
#[derive(Debug, Serialize)]
pub struct DocTypeView<'a> {
    /// DocType name.
    pub doctype: &'a str,
    /// Table name.
    pub table: &'a str,
    /// Changes, in order.
    pub changes: &'a [Change],
    /// Forward statements, in execution order.
    pub forward_sql: Vec<String>,
    /// Statements that undo the forward ones, in execution order.
    pub rollback_sql: Vec<String>,
    /// Findings about this DocType, most severe first.
    pub findings: Vec<&'a Finding>,
    /// Columns the DocType no longer declares; kept unless dropping was asked for.
    pub orphans: &'a [String],
    /// How the table is changed: `create`, `native`, `in_place`,
    /// `rebuild` or `drop` (left out when nothing changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approach: Option<Approach>,
    /// Why that way (left out when nothing changes).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub why: &'a str,
    /// Backups `apply` would take before the steps (left out when none).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub backups: &'a [PlannedBackup],
}

/// Plan output: `{"blocked", "doctypes"}`. DocTypes with neither changes
/// nor findings are left out.
#[derive(Debug, Serialize)]
pub struct PlanView<'a> {
    /// Whether `apply` would refuse this plan.
    pub blocked: bool,
    /// DocTypes with something to do or to report, by DocType name.
    pub doctypes: Vec<DocTypeView<'a>>,
    /// DocTypes already up to date (text summary only).
    #[serde(skip)]
    pub up_to_date: usize,
    /// Input accepted as Frappe accepts it (warnings), in input order.
    pub warnings: &'a [Warning],
}

const NO_CHANGES: &[Change] = &[];
const NO_ORPHANS: &[String] = &[];

impl<'a> PlanView<'a> {
    /// Selects and orders what a dry run report shows.
    pub fn new(report: &'a DryRunReport) -> Self {
        Self::of(
            report.blocked,
            &report.plan,
            &report.findings,
            &report.warnings,
        )
    }

    /// [`PlanView::new`] from a report's parts.
    fn of(
        blocked: bool,
        plan: &'a MigrationPlan,
        findings: &'a [Finding],
        warnings: &'a [Warning],
    ) -> Self {
        let mut doctypes: Vec<DocTypeView<'a>> = Vec::new();
        let mut up_to_date = 0;
        for dt_plan in &plan.doctypes {
            let found = findings_of(findings, &dt_plan.doctype);
            if dt_plan.is_empty() && found.is_empty() {
                up_to_date += 1;
                continue;
            }
            doctypes.push(view_of(dt_plan, found));
        }
        // Findings about DocTypes without a plan entry (no table, say).
        for f in findings {
            if !doctypes.iter().any(|d| d.doctype == f.doctype)
                && !plan.doctypes.iter().any(|p| p.doctype == f.doctype)
            {
                doctypes.push(DocTypeView {
                    doctype: &f.doctype,
                    table: &f.table,
                    changes: NO_CHANGES,
                    forward_sql: Vec::new(),
                    rollback_sql: Vec::new(),
                    findings: findings_of(findings, &f.doctype),
                    orphans: NO_ORPHANS,
                    approach: None,
                    why: "",
                    backups: &[],
                });
            }
        }
        doctypes.sort_by(|a, b| a.doctype.cmp(b.doctype));
        PlanView {
            blocked: blocked || findings.iter().any(|f| f.blocking),
            doctypes,
            up_to_date,
            warnings,
        }
    }
}

fn view_of<'a>(plan: &'a DocTypePlan, findings: Vec<&'a Finding>) -> DocTypeView<'a> {
    DocTypeView {
        doctype: &plan.doctype,
        table: &plan.table,
        changes: &plan.changes,
        forward_sql: plan.forward_sql(),
        rollback_sql: plan.rollback_sql(),
        findings,
        orphans: &plan.orphans,
        approach: plan.approach,
        why: &plan.why,
        backups: &plan.backups,
    }
}

/// The findings about one DocType, most severe first (stable otherwise).
fn findings_of<'a>(findings: &'a [Finding], doctype: &str) -> Vec<&'a Finding> {
    let mut out: Vec<&Finding> = findings.iter().filter(|f| f.doctype == doctype).collect();
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// Pretty JSON with a final newline: every `--json` document.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| CliError::Message(format!("cannot render JSON: {e}")))
}

/// `plan --json`.
pub fn plan_json(view: &PlanView<'_>) -> Result<String, CliError> {
    to_json(view)
}

/// `plan` as text, without colour.
#[cfg(test)]
pub fn plan_text(view: &PlanView<'_>) -> String {
    plan_text_styled(view, Palette::plain())
}

/// `plan` as text, coloured with `palette`: changes as a diff (`+` added,
/// `~` changed, `-` removed), SQL dimmed, findings by severity. Without
/// colour the text is the same minus the escapes.
pub fn plan_text_styled(view: &PlanView<'_>, palette: Palette) -> String {
    let mut out = String::new();
    let mut changes = 0;
    let mut statements = 0;
    let mut findings = 0;
    let mut blocking = 0;
    for dt in &view.doctypes {
        changes += dt.changes.len();
        statements += dt.forward_sql.len();
        findings += dt.findings.len();
        blocking += dt.findings.iter().filter(|f| f.blocking).count();
        palette.push(
            &mut out,
            Some(Tone::Heading),
            &format!("{} ({})", dt.doctype, dt.table),
        );
        out.push('\n');
        if !dt.changes.is_empty() {
            let _ = writeln!(out, "  changes:");
            for c in dt.changes {
                out.push_str("    ");
                palette.push(&mut out, Some(Tone::of_change(c.kind)), &change_line(c));
                out.push('\n');
            }
        }
        if let Some(approach) = dt.approach {
            let _ = writeln!(out, "  approach: {approach} ({})", dt.why);
        }
        if !dt.forward_sql.is_empty() {
            let _ = writeln!(out, "  forward SQL:");
            sql_lines_styled(&mut out, &dt.forward_sql, palette);
            let _ = writeln!(out, "  rollback SQL:");
            sql_lines_styled(&mut out, &dt.rollback_sql, palette);
        }
        if !dt.backups.is_empty() {
            let _ = writeln!(out, "  backups taken first:");
            for b in dt.backups {
                let _ = writeln!(out, "    - {}", super::backup::planned_text(b));
            }
        }
        if !dt.orphans.is_empty() {
            let _ = writeln!(
                out,
                "  orphans (kept; --drop-orphan-columns drops them): {}",
                dt.orphans.join(", ")
            );
        }
        if !dt.findings.is_empty() {
            let _ = writeln!(out, "  findings:");
            finding_lines_styled(&mut out, &dt.findings, palette);
        }
        out.push('\n');
    }
    let with_changes = view
        .doctypes
        .iter()
        .filter(|d| !d.changes.is_empty())
        .count();
    let _ = writeln!(
        out,
        "Plan: {with_changes} DocType(s) to migrate ({changes} change(s), {statements} statement(s)), \
         {} up to date; {findings} finding(s), {blocking} blocking{}.",
        view.up_to_date,
        match view.warnings.len() {
            0 => String::new(),
            n => format!("; {n} warning(s) (on stderr)"),
        }
    );
    if view.blocked {
        palette.push(
            &mut out,
            Some(Tone::Severe),
            "Blocked: apply would refuse this plan (exit code 2).",
        );
        out.push('\n');
    }
    out
}

/// One change as a diff line: `+ add_column email VARCHAR(140)`,
/// `~ change_type qty VARCHAR(140) -> INTEGER`, `- drop_column notes TEXT`,
/// `~ rename_column mobile_no -> mobile_number`.
pub fn change_line(c: &Change) -> String {
    let sign = match Tone::of_change(c.kind) {
        Tone::Add => '+',
        Tone::Remove => '-',
        _ => '~',
    };
    let mut line = format!("{sign} {}", c.kind);
    if c.kind == ChangeKind::RenameColumn {
        let from = c.from.as_deref().unwrap_or("?");
        let to = c.to.as_deref().or(c.column.as_deref()).unwrap_or("?");
        let _ = write!(line, " {from} -> {to}");
        return line;
    }
    if let Some(col) = &c.column {
        let _ = write!(line, " {col}");
    }
    if let Some(index) = &c.index {
        let _ = write!(line, " {index} ({})", c.columns.join(", "));
    }
    match (&c.from, &c.to) {
        (Some(a), Some(b)) => {
            let _ = write!(line, " {a} -> {b}");
        }
        // Something new: its value (type, default) alone reads best.
        (None, Some(b)) if sign == '+' => {
            let _ = write!(line, " {b}");
        }
        (None, Some(b)) => {
            let _ = write!(line, " (none) -> {b}");
        }
        // Something removed: what it was.
        (Some(a), None) if sign == '-' => {
            let _ = write!(line, " {a}");
        }
        (Some(a), None) => {
            let _ = write!(line, " {a} -> (none)");
        }
        (None, None) => {}
    }
    if !c.layers.is_empty() {
        let _ = write!(line, "  [from {}]", c.layers.join("; "));
    }
    line
}

#[cfg(test)]
fn sql_lines(out: &mut String, statements: &[String]) {
    sql_lines_styled(out, statements, Palette::plain());
}

/// SQL statements, one line each (continuations indented), each ending
/// with `;` as a SQL console would show them; dimmed with colour.
fn sql_lines_styled(out: &mut String, statements: &[String], palette: Palette) {
    for sql in statements {
        let sql = sql.trim_end_matches('\n');
        let mut lines = sql.lines().peekable();
        let mut first = true;
        while let Some(line) = lines.next() {
            out.push_str(if first { "    " } else { "      " });
            first = false;
            if lines.peek().is_none() {
                palette.push(out, Some(Tone::Dim), &format!("{line};"));
            } else {
                palette.push(out, Some(Tone::Dim), line);
            }
            out.push('\n');
        }
    }
}

fn finding_lines(out: &mut String, findings: &[&Finding]) {
    finding_lines_styled(out, findings, Palette::plain());
}

/// Findings, most severe first as given; the `[rule severity]` tag is
/// coloured by severity (critical and high red, medium yellow).
fn finding_lines_styled(out: &mut String, findings: &[&Finding], palette: Palette) {
    for f in findings {
        let blocking = if f.blocking { ", blocking" } else { "" };
        let mut place = f.table.clone();
        if let Some(c) = &f.column {
            place.push('.');
            place.push_str(c);
        }
        if let Some(n) = f.rows_affected {
            let _ = write!(place, ", {n} row(s)");
        }
        out.push_str("    - ");
        palette.push(
            out,
            Tone::of_severity(f.severity),
            &format!("[{} {}{blocking}]", f.rule, f.severity),
        );
        let _ = writeln!(out, " {} ({place})", f.message);
        if !f.suggestion.is_empty() {
            let _ = writeln!(out, "      suggestion: {}", f.suggestion);
        }
    }
}

/// `apply --json` for an apply that ran (or had nothing to do).
#[derive(Debug, Serialize)]
struct ApplyJson<'a> {
    blocked: bool,
    batch_id: Option<&'a str>,
    migrations: &'a [MigrationRecord],
    findings: &'a [Finding],
    warnings: &'a [Warning],
}

/// `apply --json`.
pub fn apply_json(report: &ApplyReport) -> Result<String, CliError> {
    to_json(&ApplyJson {
        blocked: false,
        batch_id: report.batch_id.as_deref(),
        migrations: &report.migrations,
        findings: &report.findings,
        warnings: &report.warnings,
    })
}

/// `apply --json` when validation refused the plan.
pub fn blocked_json(findings: &[Finding], warnings: &[Warning]) -> Result<String, CliError> {
    to_json(&ApplyJson {
        blocked: true,
        batch_id: None,
        migrations: &[],
        findings,
        warnings,
    })
}

/// Warnings as `warning: [QK001] file: DocType "X", field "y": ...` lines
/// (for stderr, where they go even with `--quiet`).
pub fn warning_lines(warnings: &[Warning]) -> String {
    warnings.iter().map(|w| format!("warning: {w}\n")).collect()
}

/// `apply` as text.
pub fn apply_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    if report.migrations.is_empty() {
        out.push_str("Nothing to do: the database is up to date.\n");
    }
    for m in &report.migrations {
        let id = m.id.map(|i| format!("#{i}")).unwrap_or_else(|| "#?".into());
        let _ = write!(
            out,
            "{id} {} ({}): {}, {} change(s), {} row(s) copied, {:.1} ms",
            m.doctype,
            m.table,
            m.status,
            m.changes.len(),
            m.affected_rows,
            m.execution_time_ms
        );
        match &m.error {
            Some(e) => {
                let _ = writeln!(out, "\n    error: {}", one_line(e));
            }
            None => out.push('\n'),
        }
        for b in &m.backups {
            let _ = writeln!(out, "    backup: {}", b.display());
        }
    }
    if !report.findings.is_empty() {
        let refs: Vec<&Finding> = report.findings.iter().collect();
        out.push_str("Findings:\n");
        finding_lines(&mut out, &refs);
    }
    if !report.migrations.is_empty() {
        let failed = report.failed().count();
        let _ = writeln!(
            out,
            "Applied: {} completed, {failed} failed (batch {}).",
            report.migrations.len() - failed,
            report.batch_id.as_deref().unwrap_or("-")
        );
    }
    out
}

/// `apply` as text when validation refused the plan.
pub fn blocked_text(findings: &[Finding]) -> String {
    let mut out = String::from("Refused by validation; nothing was written.\n");
    let mut doctypes: Vec<&str> = findings.iter().map(|f| f.doctype.as_str()).collect();
    doctypes.sort();
    doctypes.dedup();
    for dt in doctypes {
        let group = findings_of(findings, dt);
        let table = group.first().map(|f| f.table.as_str()).unwrap_or_default();
        let _ = writeln!(out, "{dt} ({table})");
        finding_lines(&mut out, &group);
    }
    out
}

/// `history --json`: the rows as stored, keys = column names.
pub fn history_json(rows: &[HistoryRow]) -> Result<String, CliError> {
    to_json(rows)
}

/// The metrics columns of `history`: time in validate, backup, execute
/// and verify (ms), rows copied and backup bytes written, from the row's
/// `metrics` JSON; `-` where a row has none (recorded before metrics were).
fn metrics_cells(metrics: &serde_json::Value) -> [String; 6] {
    let ms = |key: &str| {
        metrics
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .map_or_else(|| "-".into(), |v| format!("{v:.1}"))
    };
    let count = |key: &str| metrics.get(key).and_then(serde_json::Value::as_u64);
    [
        ms("validate_ms"),
        ms("backup_ms"),
        ms("execute_ms"),
        ms("verify_ms"),
        count("rows_copied").map_or_else(|| "-".into(), |n| n.to_string()),
        count("bytes_backed_up").map_or_else(|| "-".into(), compact_bytes),
    ]
}

/// Bytes in at most a few characters, no spaces: `0`, `512B`, `1.5K`, `12.0M`, `3.2G`.
pub fn compact_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n == 0 {
        return "0".into();
    }
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// `text` with control characters escaped (`\u{1b}`), so stored text
/// cannot drive the terminal; `\n` kept when `keep_newlines`. The one
/// escaping the command line's output goes through.
pub fn escape_controls(text: &str, keep_newlines: bool) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !(keep_newlines && c == '\n') {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A table cell or a single line: every control character escaped.
pub fn printable(text: &str) -> String {
    escape_controls(text, false)
}

/// `history` as a table.
pub fn history_text(rows: &[HistoryRow]) -> String {
    if rows.is_empty() {
        return "No migrations recorded.\n".to_string();
    }
    let header = [
        "id",
        "doctype",
        "version",
        "status",
        "timestamp",
        "changes",
        "ms",
        "rows",
        "val_ms",
        "bak_ms",
        "exe_ms",
        "ver_ms",
        "copied",
        "backup",
    ];
    let cells: Vec<[String; 14]> = rows
        .iter()
        .map(|r| {
            let [val, bak, exe, ver, copied, backup] = metrics_cells(&r.metrics);
            [
                r.id.to_string(),
                printable(&r.doctype),
                r.version.to_string(),
                r.status.to_string(),
                printable(&r.timestamp),
                r.changes.as_array().map_or(0, Vec::len).to_string(),
                r.execution_time
                    .map_or_else(|| "-".into(), |ms| format!("{ms:.1}")),
                r.affected_rows
                    .map_or_else(|| "-".into(), |n| n.to_string()),
                val,
                bak,
                exe,
                ver,
                copied,
                backup,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Numbers right-aligned, text left-aligned.
    let numeric = [
        true, false, true, false, false, true, true, true, true, true, true, true, true, true,
    ];
    let mut out = String::new();
    let mut line = |cols: &[String]| {
        let parts: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i].saturating_sub(c.chars().count());
                if numeric[i] {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&header.map(String::from));
    for row in &cells {
        line(row);
    }
    for r in rows.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(
            out,
            "#{} error: {}",
            r.id,
            one_line(r.error.as_deref().unwrap_or_default())
        );
    }
    out
}

/// Text with every run of whitespace (newlines in SQL) collapsed to one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use doctype_migrate::{MigrationPlan, Rule, Severity};

    fn finding(doctype: &str, severity: Severity, blocking: bool) -> Finding {
        serde_json::from_value(serde_json::json!({
            "rule": Rule::Dl003,
            "severity": severity,
            "blocking": blocking,
            "doctype": doctype,
            "table": format!("tab{doctype}"),
            "column": "qty",
            "rows_affected": 3,
            "message": "type change alters stored values",
            "suggestion": "fix the values first",
        }))
        .unwrap()
    }

    #[test]
    fn findings_are_grouped_by_doctype_most_severe_first_and_block() {
        let plan = MigrationPlan::default();
        let findings = vec![
            finding("Item", Severity::Low, false),
            finding("Item", Severity::Critical, true),
            finding("Customer", Severity::Medium, false),
        ];
        let view = PlanView::of(true, &plan, &findings, &[]);
        assert!(view.blocked);
        let names: Vec<&str> = view.doctypes.iter().map(|d| d.doctype).collect();
        assert_eq!(names, ["Customer", "Item"]);
        assert_eq!(view.doctypes[1].findings[0].severity, Severity::Critical);
        let text = plan_text(&view);
        assert!(text.contains("[DL003 critical, blocking]"), "{text}");
        assert!(text.contains("Blocked: apply would refuse"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&plan_json(&view).unwrap()).unwrap();
        let keys: Vec<&String> = json["doctypes"][0].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "doctype",
                "table",
                "changes",
                "forward_sql",
                "rollback_sql",
                "findings",
                "orphans"
            ]
        );
        let f = json["doctypes"][1]["findings"][0].as_object().unwrap();
        let keys: Vec<&String> = f.keys().collect();
        assert_eq!(
            keys,
            [
                "rule",
                "severity",
                "blocking",
                "doctype",
                "table",
                "column",
                "rows_affected",
                "message",
                "suggestion"
            ]
        );
    }

    #[test]
    fn blocked_apply_json_has_findings_and_no_migrations() {
        let json: serde_json::Value = serde_json::from_str(
            &blocked_json(&[finding("Item", Severity::High, true)], &[]).unwrap(),
        )
        .unwrap();
        assert_eq!(json["blocked"], true);
        assert_eq!(json["migrations"], serde_json::json!([]));
        assert_eq!(json["findings"][0]["rule"], "DL003");
        assert!(blocked_text(&[finding("Item", Severity::High, true)]).contains("Item (tabItem)"));
    }

    #[test]
    fn sql_statements_end_with_a_semicolon_and_continue_indented() {
        let mut out = String::new();
        sql_lines(
            &mut out,
            &["CREATE TABLE t (\n  a\n)".into(), "DROP INDEX i".into()],
        );
        assert_eq!(
            out,
            "    CREATE TABLE t (\n        a\n      );\n    DROP INDEX i;\n"
        );
    }
}
