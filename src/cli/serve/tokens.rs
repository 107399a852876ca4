//! API tokens: `doctype-migrate token add|list|revoke` and the check of a
//! bearer token.
//!
//! The tokens file holds, per token, its name, its role and the SHA-256 of
//! the token; never the token itself, which `token add` prints once. It is
//! written with mode 0600 through a temporary file and a rename, so a crash
//! leaves the old file or the new one.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::cli::CliError;

/// What a token may do. Each role includes reading.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads status, history, plans, backups and the audit log.
    Viewer,
    /// Reads, and approves plans.
    Approver,
    /// Reads, plans, applies and rolls back.
    Operator,
    /// All of the above.
    Admin,
}

impl Role {
    /// Whether this role may approve plans.
    pub fn can_approve(self) -> bool {
        matches!(self, Role::Approver | Role::Admin)
    }

    /// Whether this role may plan, apply and roll back.
    pub fn can_operate(self) -> bool {
        matches!(self, Role::Operator | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// One stored token: who, what, and the hash that identifies it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    /// Unique name; recorded as `applied_by` and in the audit log.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// When it was added (RFC 3339, UTC).
    pub created_at: String,
}

/// The tokens file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TokenFile {
    /// Format version (1).
    pub version: u32,
    /// The tokens, in the order they were added.
    pub tokens: Vec<StoredToken>,
}

/// Who a request is.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

const PREFIX: &str = "dmt_";

impl TokenFile {
    /// Reads a tokens file; a missing file is an empty set of tokens when
    /// `missing_ok`.
    pub fn load(path: &Path, missing_ok: bool) -> Result<TokenFile, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TokenFile {
                    version: 1,
                    tokens: Vec::new(),
                });
            }
            Err(e) => {
                return Err(CliError::Message(format!(
                    "cannot read tokens file {}: {e}",
                    path.display()
                )));
            }
        };
        let file: TokenFile = serde_json::from_str(&text).map_err(|e| {
            CliError::Message(format!("tokens file {} is not valid: {e}", path.display()))
        })?;
        if file.version != 1 {
            return Err(CliError::Message(format!(
                "tokens file {} has version {}; this build reads version 1",
                path.display(),
                file.version
            )));
        }
        Ok(file)
    }

    /// Writes the file: mode 0600, through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let io = |e: std::io::Error| {
            CliError::Message(format!("cannot write tokens file {}: {e}", path.display()))
        };
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp_name);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| CliError::Message(e.to_string()))?;
        let written = o.open(&tmp).and_then(|mut f| {
            use std::io::Write;
            f.write_all(&json)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(())
    }

    /// Adds a token named `name` with `role`; returns the token, which is
    /// stored only as its hash.
    pub fn add(&mut self, name: &str, role: Role) -> Result<String, CliError> {
        check_name(name)?;
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(CliError::Message(format!(
                "a token named {name:?} exists already (names are unique; revoke it first)"
            )));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| CliError::Message(format!("no randomness from the OS: {e}")))?;
        let token = format!("{PREFIX}{}", hex(&raw));
        self.tokens.push(StoredToken {
            name: name.to_owned(),
            role,
            sha256: hex(&Sha256::digest(token.as_bytes())),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        Ok(token)
    }

    /// Removes the token named `name`.
    pub fn revoke(&mut self, name: &str) -> Result<(), CliError> {
        let before = self.tokens.len();
        self.tokens.retain(|t| t.name != name);
        if self.tokens.len() == before {
            return Err(CliError::Message(format!("no token named {name:?}")));
        }
        Ok(())
    }

    /// The principal a bearer token belongs to. Every stored hash is
    /// compared, in constant time, whatever matches.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let presented = Sha256::digest(token.as_bytes());
        let mut found = None;
        for t in &self.tokens {
            let Some(stored) = unhex(&t.sha256) else {
                continue;
            };
            if bool::from(stored.as_slice().ct_eq(presented.as_slice())) {
                found = Some(Principal {
                    name: t.name.clone(),
                    role: t.role,
                });
            }
        }
        found
    }
}

/// Token names are recorded in history and logs: short, printable, no
/// spaces.
fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Message(format!(
            "token name {name:?} is not valid: 1-64 characters of letters, digits, '.', '_', '-', '@'"
        )))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `token add|list|revoke`.
pub fn run(args: &crate::cli::args::TokenArgs) -> Result<crate::cli::Outcome, CliError> {
    use crate::cli::args::TokenCommand;
    let mut out = crate::cli::Outcome::default();
    match &args.command {
        TokenCommand::Add { tokens, name, role } => {
            let mut file = TokenFile::load(tokens, true)?;
            let token = file.add(name, *role)?;
            file.save(tokens)?;
            out.stdout = format!("{token}\n");
        }
        TokenCommand::List { tokens, json } => {
            let file = TokenFile::load(tokens, false)?;
            out.stdout = if *json {
                let rows: Vec<_> = file
                    .tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({"name": t.name, "role": t.role, "created_at": t.created_at})
                    })
                    .collect();
                crate::cli::output::to_json(&rows)?
            } else {
                file.tokens
                    .iter()
                    .map(|t| format!("{:<24} {:<9} {}\n", t.name, t.role, t.created_at))
                    .collect()
            };
        }
        TokenCommand::Revoke { tokens, name } => {
            let mut file = TokenFile::load(tokens, false)?;
            file.revoke(name)?;
            file.save(tokens)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_authenticates_its_name_and_role_and_nothing_else_does() {
        let mut f = TokenFile::default();
        let a = f.add("alice", Role::Approver).unwrap();
        let b = f.add("bob", Role::Operator).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        let p = f.authenticate(&a).unwrap();
        assert_eq!((p.name.as_str(), p.role), ("alice", Role::Approver));
        assert_eq!(f.authenticate(&b).unwrap().name, "bob");
        assert!(f.authenticate("dmt_nope").is_none());
        assert!(f.authenticate("").is_none());
        // Only the hash is kept.
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains(&a[PREFIX.len()..]));
        assert!(f.add("alice", Role::Viewer).is_err(), "names are unique");
        assert!(f.add("has space", Role::Viewer).is_err());
        f.revoke("alice").unwrap();
        assert!(f.authenticate(&a).is_none());
        assert!(f.revoke("alice").is_err());
    }

    #[test]
    fn each_role_grants_what_the_server_guide_lists() {
        assert!(!Role::Viewer.can_approve() && !Role::Viewer.can_operate());
        assert!(Role::Approver.can_approve() && !Role::Approver.can_operate());
        assert!(!Role::Operator.can_approve() && Role::Operator.can_operate());
        assert!(Role::Admin.can_approve() && Role::Admin.can_operate());
    }
}
