//! The durable outbox: every event the terminal accepts from a client's
//! help button, a sensor or the call log is written to its own file and
//! fsynced before it is acknowledged to the source, and removed only when
//! the hub has acknowledged it. A power cut at any point loses nothing.
//!
//! One file per event, `<seq:020>.json`, holding the event and a checksum.
//! A damaged file is set aside as `.corrupt` and the rest is kept.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use etahoiva_proto::Event;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("the outbox disk {} is full: the event was not accepted; free space and try again", dir.display())]
    DiskFull { dir: PathBuf },
    #[error("outbox file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "invalid event key {0:?}: use 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'"
    )]
    BadKey(String),
}

/// A file that could not be read back, set aside for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
struct Record {
    seq: u64,
    checksum: String,
    event: Event,
}

/// 64-bit FNV-1a, enough to notice torn or altered files.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn checksum(event: &Event) -> String {
    let bytes = serde_json::to_vec(event).unwrap_or_default();
    format!("{:016x}", fnv1a(&bytes))
}

fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(code) if code == libc::ENOSPC || code == libc::EDQUOT)
}

fn classify(dir: &Path, path: &Path, source: std::io::Error) -> OutboxError {
    if is_disk_full(&source) {
        OutboxError::DiskFull {
            dir: dir.to_path_buf(),
        }
    } else {
        OutboxError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn valid_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Sequence number of a file name like `00000000000000000042.json(.corrupt)`.
fn seq_of(name: &str) -> Option<u64> {
    let digits = name.split('.').next()?;
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// The events waiting for the hub, in the order they were accepted.
pub struct Outbox {
    dir: PathBuf,
    next_seq: u64,
    entries: Vec<(u64, Event)>,
    keys: HashSet<String>,
}

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir` and reads back what it holds.
    pub fn open(dir: &Path) -> Result<(Outbox, Vec<Quarantined>), OutboxError> {
        fs::create_dir_all(dir).map_err(|e| classify(dir, dir, e))?;
        let mut files = Vec::new();
        let mut max_seq = 0u64;
        let listing = fs::read_dir(dir).map_err(|e| classify(dir, dir, e))?;
        for entry in listing {
            let entry = entry.map_err(|e| classify(dir, dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(".tmp") {
                // Never acknowledged to its source: safe to drop.
                let _ = fs::remove_file(&path);
                continue;
            }
            if let Some(seq) = seq_of(&name) {
                max_seq = max_seq.max(seq);
                if name.ends_with(".json") {
                    files.push((seq, path));
                }
            }
        }
        files.sort();
        let mut outbox = Outbox {
            dir: dir.to_path_buf(),
            next_seq: max_seq + 1,
            entries: Vec::with_capacity(files.len()),
            keys: HashSet::new(),
        };
        let mut quarantined = Vec::new();
        for (seq, path) in files {
            match Self::read_record(&path) {
                Ok(event) => {
                    if outbox.keys.insert(event.key.clone()) {
                        outbox.entries.push((seq, event));
                    } else {
                        // A second copy of a pending event: the first one stays.
                        let _ = fs::remove_file(&path);
                    }
                }
                Err(reason) => {
                    let mut corrupt = path.clone().into_os_string();
                    corrupt.push(".corrupt");
                    let corrupt = PathBuf::from(corrupt);
                    let _ = fs::rename(&path, &corrupt);
                    quarantined.push(Quarantined {
                        path: corrupt,
                        reason,
                    });
                }
            }
        }
        if !quarantined.is_empty() {
            let _ = sync_dir(dir);
        }
        Ok((outbox, quarantined))
    }

    fn read_record(path: &Path) -> Result<Event, String> {
        let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let record: Record =
            serde_json::from_slice(&bytes).map_err(|e| format!("not an outbox record: {e}"))?;
        if record.checksum != checksum(&record.event) {
            return Err("checksum mismatch: the file was damaged".into());
        }
        if !valid_key(&record.event.key) {
            return Err(format!("invalid event key {:?}", record.event.key));
        }
        Ok(record.event)
    }

    /// Writes the event durably. Ok(false) when an event with the same key
    /// is already waiting. Only an Ok means the event is accepted.
    pub fn push(&mut self, event: Event) -> Result<bool, OutboxError> {
        if !valid_key(&event.key) {
            return Err(OutboxError::BadKey(event.key));
        }
        if self.keys.contains(&event.key) {
            return Ok(false);
        }
        let seq = self.next_seq;
        let record = Record {
            seq,
            checksum: checksum(&event),
            event,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| OutboxError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e),
        })?;
        let path = self.dir.join(format!("{seq:020}.json"));
        let tmp = self.dir.join(format!("{seq:020}.json.tmp"));
        let written = (|| -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            if path.exists() {
                // Renamed but the directory sync failed: not known durable.
                let _ = fs::remove_file(&path);
            }
            return Err(classify(&self.dir, &path, e));
        }
        self.next_seq += 1;
        self.keys.insert(record.event.key.clone());
        self.entries.push((seq, record.event));
        Ok(true)
    }

    /// The hub has stored the event: remove it. Ok(false) for an unknown key.
    pub fn ack(&mut self, key: &str) -> Result<bool, OutboxError> {
        let Some(index) = self.entries.iter().position(|(_, e)| e.key == key) else {
            return Ok(false);
        };
        let seq = self.entries[index].0;
        let path = self.dir.join(format!("{seq:020}.json"));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(classify(&self.dir, &path, e)),
        }
        // Losing this sync only means a resend, which the hub ignores.
        let _ = sync_dir(&self.dir);
        self.entries.remove(index);
        self.keys.remove(key);
        Ok(true)
    }

    /// Pending events, oldest first.
    pub fn pending(&self) -> Vec<Event> {
        self.entries.iter().map(|(_, e)| e.clone()).collect()
    }

    pub fn first(&self) -> Option<&Event> {
        self.entries.first().map(|(_, e)| e)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etahoiva_proto::EventKind;

    fn event(key: &str) -> Event {
        Event {
            key: key.into(),
            kind: EventKind::HelpButton,
            occurred_at: 1_700_000_000_000,
            detail: serde_json::json!({ "input": "kiosk" }),
        }
    }

    fn keys(outbox: &Outbox) -> Vec<String> {
        outbox.pending().into_iter().map(|e| e.key).collect()
    }

    #[test]
    fn events_survive_a_reopen_in_order_until_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut outbox, q) = Outbox::open(dir.path()).expect("open");
        assert!(q.is_empty());
        for k in ["a1", "b2", "c3"] {
            assert!(outbox.push(event(k)).expect("push"));
        }
        assert!(outbox.ack("b2").expect("ack"));
        drop(outbox);
        let (outbox, _) = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(keys(&outbox), ["a1", "c3"]);
        assert_eq!(outbox.first().map(|e| e.key.as_str()), Some("a1"));
        assert_eq!(outbox.pending()[0], event("a1"));
    }

    #[test]
    fn a_pending_key_is_not_written_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut outbox, _) = Outbox::open(dir.path()).expect("open");
        assert!(outbox.push(event("k")).expect("push"));
        assert!(!outbox.push(event("k")).expect("push again"));
        assert_eq!(outbox.len(), 1);
        let files = fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(files, 1);
    }

    #[test]
    fn damaged_files_are_set_aside_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut outbox, _) = Outbox::open(dir.path()).expect("open");
        for k in ["a", "b", "c"] {
            outbox.push(event(k)).expect("push");
        }
        drop(outbox);
        let garbage = dir.path().join(format!("{:020}.json", 1));
        fs::write(&garbage, b"\x00\x01 not json").expect("write");
        let second = dir.path().join(format!("{:020}.json", 2));
        let text = fs::read_to_string(&second).expect("read");
        fs::write(&second, text.replace("kiosk", "kiosK")).expect("tamper");
        fs::write(dir.path().join("00000000000000000009.json.tmp"), b"half").expect("tmp");

        let (mut outbox, quarantined) = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(keys(&outbox), ["c"]);
        assert_eq!(quarantined.len(), 2);
        assert!(
            quarantined[1].reason.contains("checksum"),
            "{quarantined:?}"
        );
        assert!(quarantined.iter().all(|q| q.path.exists()));
        assert!(!dir.path().join("00000000000000000009.json.tmp").exists());
        outbox.push(event("d")).expect("push");
        let newest = dir.path().join(format!("{:020}.json", 4));
        assert!(
            newest.exists(),
            "numbering continues after the set-aside files"
        );
        let (outbox, again) = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(keys(&outbox), ["c", "d"]);
        assert!(again.is_empty(), "set-aside files are not reported twice");
    }

    #[test]
    fn bad_keys_and_unknown_acks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut outbox, _) = Outbox::open(dir.path()).expect("open");
        assert!(matches!(
            outbox.push(event("../escape")),
            Err(OutboxError::BadKey(_))
        ));
        assert!(matches!(
            outbox.push(event("")),
            Err(OutboxError::BadKey(_))
        ));
        assert!(!outbox.ack("never-seen").expect("ack"));
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let dir = Path::new("/var/lib/etahoiva-edge/outbox");
        let full = classify(dir, dir, std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(full, OutboxError::DiskFull { .. }));
        assert!(full.to_string().contains("full"));
        let other = classify(dir, dir, std::io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(other, OutboxError::Io { .. }));
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut outbox, _) = Outbox::open(dir.path()).expect("open");
        outbox.push(event("kept")).expect("push");
        // The directory disappears under the outbox: the write fails cleanly.
        let moved = dir.path().with_extension("moved");
        fs::rename(dir.path(), &moved).expect("move");
        let err = outbox.push(event("lost")).expect_err("cannot write");
        assert!(matches!(err, OutboxError::Io { .. }), "{err}");
        assert_eq!(keys(&outbox), ["kept"]);
        fs::rename(&moved, dir.path()).expect("move back");
        let (reopened, _) = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(keys(&reopened), ["kept"]);
    }
}
