//! Small JSON files in the agent's state directory (the alarm's progress,
//! the client's notices): written atomically, read back at start, and set
//! aside when damaged so a bad file never stops the terminal.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// These files hold a few kilobytes; one far beyond this is not ours.
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// What [`load`] found.
#[derive(Debug, PartialEq)]
pub enum Loaded<T> {
    /// No file yet.
    Missing,
    Loaded(T),
    /// The file was damaged and has been renamed to `set_aside`.
    Corrupt {
        set_aside: PathBuf,
        reason: String,
    },
    /// The file exists but cannot be read (permissions, I/O); left in place.
    Unreadable(String),
}

impl<T> Loaded<T> {
    /// The value read, or `None` (with the reason logged) when there is none.
    pub fn into_value(self, what: &str) -> Option<T> {
        match self {
            Loaded::Loaded(value) => Some(value),
            Loaded::Missing => None,
            Loaded::Corrupt { set_aside, reason } => {
                tracing::warn!(path = %set_aside.display(), %reason,
                    "the saved {what} is damaged; it was set aside and the terminal starts without it");
                None
            }
            Loaded::Unreadable(reason) => {
                tracing::warn!(%reason, "cannot read the saved {what}; the terminal starts without it");
                None
            }
        }
    }
}

/// Writes `value` to `path` atomically: after a crash the file holds either
/// the previous content or this one.
pub fn save<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    crate::agent::write_atomically(path, &bytes)
}

/// Reads `path`. A damaged file is renamed to `<name>.corrupt`; this never panics.
pub fn load<T: DeserializeOwned>(path: &Path) -> Loaded<T> {
    let too_large = match std::fs::metadata(path) {
        Ok(meta) => meta.len() > MAX_FILE_BYTES,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => return Loaded::Unreadable(e.to_string()),
    };
    let parsed = if too_large {
        Err(format!("larger than {MAX_FILE_BYTES} bytes"))
    } else {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<T>(&bytes).map_err(|e| e.to_string()),
            Err(e) => return Loaded::Unreadable(e.to_string()),
        }
    };
    match parsed {
        Ok(value) => Loaded::Loaded(value),
        Err(reason) => {
            let set_aside = path.with_extension("json.corrupt");
            if let Err(e) = std::fs::rename(path, &set_aside) {
                tracing::warn!(path = %path.display(), error = %e,
                    "a damaged state file cannot be set aside; it is ignored");
            }
            Loaded::Corrupt { set_aside, reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_damaged_files_are_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("thing.json");
        assert_eq!(load::<Vec<u32>>(&path), Loaded::Missing);
        save(&path, &vec![1u32, 2, 3]).expect("save");
        assert_eq!(load::<Vec<u32>>(&path), Loaded::Loaded(vec![1, 2, 3]));
        save(&path, &vec![4u32]).expect("save");
        assert_eq!(load::<Vec<u32>>(&path).into_value("thing"), Some(vec![4]));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("thing.json")]);

        std::fs::write(&path, b"[1, 2,").expect("write");
        match load::<Vec<u32>>(&path) {
            Loaded::Corrupt { set_aside, .. } => {
                assert_eq!(set_aside, dir.path().join("thing.json.corrupt"));
                assert_eq!(std::fs::read(&set_aside).expect("kept"), b"[1, 2,");
            }
            other => panic!("expected a damaged file, got {other:?}"),
        }
        assert!(!path.exists());
        assert_eq!(load::<Vec<u32>>(&path), Loaded::Missing);
    }
}
