//! The member's identity in its data directory: the member id (a UUID generated at the
//! first start and kept for good) and the group it belongs to.
//!
//! File `identity.toml`:
//!
//! ```toml
//! member_id = "2f1c…"   # this member's UUID, generated once
//! group_name = "8a0e…"  # the group this data directory belongs to
//! ```
//!
//! It is written once, to a temporary file that is synced and renamed into place, so a
//! crash never leaves a half-written identity. This module must never change an
//! existing identity: a data directory of another group is refused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::GroupError;

/// Name of the identity file in the data directory.
pub const IDENTITY_FILE_NAME: &str = "identity.toml";

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    member_id: String,
    group_name: String,
}

/// Formats a 128-bit id as a hyphenated UUID.
pub fn format_uuid(id: u128) -> String {
    Uuid::from_u128(id).hyphenated().to_string()
}

/// Parses a UUID (hyphenated or not).
pub fn parse_uuid(text: &str) -> Option<u128> {
    Uuid::parse_str(text.trim()).ok().map(|id| id.as_u128())
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, then syncs the
/// directory, so `path` always holds either the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), GroupError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GroupError::DataDir { path, source }
    };
    let temporary = path.with_extension("tmp");
    let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(bytes).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    fs::rename(&temporary, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Reads this data directory's member id, or creates one (and the directory) on the
/// first start. Refuses a directory that belongs to another group.
pub fn load_or_create(data_dir: &Path, group_name: u128) -> Result<u128, GroupError> {
    fs::create_dir_all(data_dir).map_err(|source| GroupError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let path = data_dir.join(IDENTITY_FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => parse_identity(&path, &text, group_name),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let member = Uuid::new_v4().as_u128();
            let file = IdentityFile {
                member_id: format_uuid(member),
                group_name: format_uuid(group_name),
            };
            let text =
                toml::to_string(&file).map_err(|error| invalid(&path, &error.to_string()))?;
            write_atomically(&path, text.as_bytes())?;
            tracing::info!(member = %format_uuid(member), path = %path.display(), "new member id generated");
            Ok(member)
        }
        Err(source) => Err(GroupError::DataDir { path, source }),
    }
}

fn parse_identity(path: &Path, text: &str, group_name: u128) -> Result<u128, GroupError> {
    let file: IdentityFile =
        toml::from_str(text).map_err(|error| invalid(path, &error.to_string()))?;
    let member = parse_uuid(&file.member_id)
        .filter(|id| *id != 0)
        .ok_or_else(|| {
            invalid(
                path,
                &format!("member_id {:?} is not a non-nil UUID", file.member_id),
            )
        })?;
    let stored = parse_uuid(&file.group_name).ok_or_else(|| {
        invalid(
            path,
            &format!("group_name {:?} is not a UUID", file.group_name),
        )
    })?;
    if stored != group_name {
        return Err(GroupError::WrongGroup {
            path: path.parent().map_or_else(PathBuf::new, Path::to_path_buf),
            stored: format_uuid(stored),
            configured: format_uuid(group_name),
        });
    }
    Ok(member)
}

fn invalid(path: &Path, reason: &str) -> GroupError {
    GroupError::DataDirContent {
        path: path.to_path_buf(),
        reason: format!("{reason}; fix or remove the file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = load_or_create(dir.path(), 7).expect("created");
        let second = load_or_create(dir.path(), 7).expect("read back");
        assert_eq!(first, second);
        assert_ne!(first, 0);
    }

    #[test]
    fn another_group_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        load_or_create(dir.path(), 7).expect("created");
        assert!(matches!(
            load_or_create(dir.path(), 8),
            Err(GroupError::WrongGroup { .. })
        ));
    }
}
