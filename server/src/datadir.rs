//! The data directory (`--data-dir`): the last membership this registry
//! knew (each member's id and gossip address), so that after a restart,
//! even of every registry at once, it knows whom it is missing: it asks
//! them to let it join and keeps its joining gate closed until they are
//! back or found down (see `registry_core::bridge::gate`).
//!
//! Files: [`MEMBERS_FILE`] (JSON, written atomically: a temporary file,
//! fsync, rename, fsync of the directory) and [`LOCK_FILE`], locked for
//! the life of the process so that a second registry cannot use the same
//! directory (the lock goes with the process, even after kill -9). A
//! membership file that cannot be read or parsed stops the start with an
//! error naming it: the registry would otherwise answer as if it had
//! forgotten members it should wait for.

use registry_core::bridge::Remembered;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The membership file's name inside the data directory.
pub const MEMBERS_FILE: &str = "members.json";
/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "registry.lock";
/// How long after a membership change the file is written (changes in
/// that window are written together).
pub const SAVE_DEBOUNCE: Duration = Duration::from_millis(500);
/// The membership file's format version.
const FORMAT: u32 = 1;

/// The membership file's contents.
#[derive(Debug, Serialize, Deserialize)]
struct MembersFile {
    /// Format version ([`FORMAT`]).
    format: u32,
    /// The registry that wrote it.
    registry: String,
    /// Every live member it knew, itself included.
    members: Vec<Entry>,
}

/// One remembered member.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    id: String,
    gossip: String,
}

/// An open, locked data directory.
#[derive(Debug)]
pub struct DataDir {
    dir: PathBuf,
    /// Held (locked) until the process ends.
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed and locks it. Fails, naming the
    /// directory, when it cannot be created or another process holds it.
    pub fn open(dir: &Path) -> Result<DataDir, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the data directory {} (--data-dir): {e}",
                dir.display()
            )
        })?;
        let path = dir.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
        match try_lock(&lock) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "the data directory {} (--data-dir) is in use by another registry-server (it holds {}); give each registry its own data directory",
                    dir.display(),
                    path.display()
                ))
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
        // For the operator: which process holds it.
        let _ = lock
            .set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()));
        Ok(DataDir {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The membership file's path.
    pub fn members_path(&self) -> PathBuf {
        self.dir.join(MEMBERS_FILE)
    }

    /// The remembered members (none when the file does not exist yet).
    /// A file that cannot be read or is not a membership file is an
    /// error naming it and what to do.
    pub fn load(&self) -> Result<Vec<Remembered>, String> {
        let path = self.members_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read the membership file {}: {e}", path.display())),
        };
        parse(&text).map_err(|e| {
            format!(
                "the membership file {} is not one this registry wrote ({e}); move it away to start without the remembered membership (as without --data-dir), or restore it",
                path.display()
            )
        })
    }

    /// Writes `members` (as known by `registry`) atomically: a temporary
    /// file, fsync, rename over the old one, fsync of the directory.
    pub fn save(&self, registry: &str, members: &[Remembered]) -> Result<(), String> {
        let file = MembersFile {
            format: FORMAT,
            registry: registry.to_string(),
            members: members
                .iter()
                .map(|m| Entry {
                    id: m.id.clone(),
                    gossip: m.gossip.to_string(),
                })
                .collect(),
        };
        let path = self.members_path();
        let tmp = self.dir.join(format!("{MEMBERS_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            serde_json::to_writer_pretty(&mut f, &file)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| format!("cannot write the membership file {}: {e}", path.display()))
    }
}

/// Takes an exclusive advisory lock on `file` without waiting: false when
/// another process holds it. The lock is released when the process ends,
/// however it ends.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor this `File` owns and keeps open.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Elsewhere the directory is not locked.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Parses and checks a membership file.
fn parse(text: &str) -> Result<Vec<Remembered>, String> {
    let file: MembersFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if file.format != FORMAT {
        return Err(format!("format {} (this version reads {FORMAT})", file.format));
    }
    file.members
        .into_iter()
        .map(|e| {
            registry_core::validate::id(&e.id)
                .map_err(|err| format!("member {:?}: {}", e.id, err.message()))?;
            let gossip: SocketAddr = e
                .gossip
                .parse()
                .map_err(|_| format!("member {:?}: gossip address {:?} is not IP:PORT", e.id, e.gossip))?;
            Ok(Remembered { id: e.id, gossip })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("registry-datadir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn saves_and_loads_and_refuses_a_second_user() {
        let dir = temp("roundtrip");
        let d = DataDir::open(&dir).unwrap();
        assert!(d.load().unwrap().is_empty(), "no file yet");
        let members = vec![
            Remembered {
                id: "reg-1".into(),
                gossip: "127.0.0.1:7370".parse().unwrap(),
            },
            Remembered {
                id: "web-1".into(),
                gossip: "[::1]:7371".parse().unwrap(),
            },
        ];
        d.save("reg-1", &members).unwrap();
        assert_eq!(d.load().unwrap(), members);
        assert!(!dir.join("members.json.tmp").exists());

        let second = DataDir::open(&dir).unwrap_err();
        assert!(second.contains("in use by another registry-server"), "{second}");
        drop(d);
        assert!(DataDir::open(&dir).is_ok(), "free again once the holder is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error_naming_it() {
        let dir = temp("corrupt");
        let d = DataDir::open(&dir).unwrap();
        for bad in [
            "{not json",
            r#"{"format":9,"registry":"r","members":[]}"#,
            r#"{"format":1,"registry":"r","members":[{"id":"","gossip":"127.0.0.1:1"}]}"#,
            r#"{"format":1,"registry":"r","members":[{"id":"a","gossip":"nowhere"}]}"#,
        ] {
            std::fs::write(d.members_path(), bad).unwrap();
            let e = d.load().unwrap_err();
            assert!(e.contains("members.json") && e.contains("move it away"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
