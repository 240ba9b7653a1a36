//! The kit's private state directory, its lock and the sysctl state file.
//!
//! This runs as root (via sudo) and must not trust anything another user could have
//! written: the directory must be a real directory (not a symlink) owned by the
//! effective user with no group/other write bit, and so must the lock file.

use anyhow::{bail, Context as _};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::os::unix::io::{AsRawFd as _, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for another run's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(20 * 60);

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// Where the state lives: `$C1M_STATE_DIR`; `/run/c1m` for root; `$XDG_RUNTIME_DIR/c1m`;
/// else `$HOME/.cache/c1m`. `env` looks up an environment variable (empty counts as
/// unset).
pub fn choose_dir(env: impl Fn(&str) -> Option<String>, euid: u32) -> anyhow::Result<PathBuf> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let dir = if let Some(d) = var("C1M_STATE_DIR") {
        PathBuf::from(d)
    } else if euid == 0 {
        PathBuf::from("/run/c1m")
    } else if let Some(x) = var("XDG_RUNTIME_DIR") {
        Path::new(&x).join("c1m")
    } else if let Some(h) = var("HOME") {
        Path::new(&h).join(".cache/c1m")
    } else {
        bail!("no place for the state directory: set C1M_STATE_DIR (or HOME) to a folder only you can write");
    };
    if !dir.is_absolute() {
        bail!(
            "state directory {} is not an absolute path: set C1M_STATE_DIR to an absolute path",
            dir.display()
        );
    }
    Ok(dir)
}

/// Why metadata `m` of `path` is not to be trusted as a `what` ("directory" or "regular
/// file") owned by `euid`, or None.
fn untrusted(m: &std::fs::Metadata, what: &str, euid: u32) -> Option<String> {
    let ft = m.file_type();
    if ft.is_symlink() {
        return Some("is a symlink".into());
    }
    let is_kind = if what == "directory" {
        ft.is_dir()
    } else {
        ft.is_file()
    };
    if !is_kind {
        return Some(format!("is not a {what}"));
    }
    if m.uid() != euid {
        return Some(format!(
            "is owned by uid {}, not by you (uid {euid})",
            m.uid()
        ));
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Some(format!("is writable by group or others (mode {mode:04o})"));
    }
    None
}

/// Fails unless `path` (not followed if a symlink) is a directory owned by `euid` that
/// neither group nor others may write.
pub fn check_dir(path: &Path, euid: u32) -> anyhow::Result<()> {
    let m = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot examine the state directory {}", path.display()))?;
    if let Some(why) = untrusted(&m, "directory", euid) {
        bail!(
            "refusing the state directory {}: it {why}; remove or fix it (or set C1M_STATE_DIR to a private folder) and run again",
            path.display()
        );
    }
    Ok(())
}

/// Creates (mode 0700; parents as needed) and checks the state directory.
pub fn open_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if std::fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // mkdir never follows a symlink in the last component; check_dir refuses one.
        if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(dir) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e).with_context(|| {
                    format!("cannot create the state directory {}", dir.display())
                });
            }
        }
    }
    check_dir(dir, euid())?;
    Ok(dir.to_path_buf())
}

/// The private state directory of this user, created and checked.
pub fn state_dir() -> anyhow::Result<PathBuf> {
    open_dir(&choose_dir(|k| std::env::var(k).ok(), euid())?)
}

/// The sysctl state file inside the state directory.
pub fn state_file(dir: &Path) -> PathBuf {
    dir.join("sysctl.saved")
}

/// An exclusive flock on `<dir>/lock`, held until dropped. The fd is close-on-exec:
/// children do not inherit it, except the watchdog, which is handed it on purpose
/// ([`Lock::raw_fd`]) so that it holds the lock while it cleans up.
#[derive(Debug)]
pub struct Lock {
    file: File,
    pub path: PathBuf,
}

impl Lock {
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Opens and checks the lock file without locking it.
fn open_lock(dir: &Path) -> anyhow::Result<Lock> {
    let path = dir.join("lock");
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        if let Some(why) = untrusted(&m, "regular file", euid()) {
            bail!(
                "refusing the lock file {}: it {why}; remove it and run again",
                path.display()
            );
        }
    }
    // O_NOFOLLOW: a symlink that appears meanwhile is refused, not followed.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot open the lock file {} (a symlink is refused); remove it and run again",
                path.display()
            )
        })?;
    let m = file
        .metadata()
        .with_context(|| format!("cannot examine {}", path.display()))?;
    if let Some(why) = untrusted(&m, "regular file", euid()) {
        bail!(
            "refusing the lock file {}: it {why}; remove it and run again",
            path.display()
        );
    }
    Ok(Lock { file, path })
}

fn try_flock(fd: RawFd) -> anyhow::Result<bool> {
    // SAFETY: flock on an fd this process owns (held open by a File); no memory is passed.
    let rc = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
        _ => Err(e).context("flock on the lock file failed"),
    }
}

/// Who holds the flock on the file of `m` (from /proc/locks): "pid N (command)".
fn holder(m: &std::fs::Metadata) -> Option<String> {
    let dev = m.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        m.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->" first.
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&id.as_str())).then(|| f[4].to_owned())
    })?;
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    Some(format!("pid {pid} ({cmd})"))
}

/// Takes the lock in `dir`; when busy, says who holds it and waits up to `wait`,
/// polling `interrupted` (a signal ends the wait with its error).
pub fn lock(
    dir: &Path,
    wait: Duration,
    interrupted: impl Fn() -> anyhow::Result<()>,
) -> anyhow::Result<Lock> {
    let lock = open_lock(dir)?;
    if try_flock(lock.raw_fd())? {
        return Ok(lock);
    }
    let who = lock
        .file
        .metadata()
        .ok()
        .and_then(|m| holder(&m))
        .unwrap_or_else(|| "another process".into());
    crate::log(format!(
        "another c1m run holds {}: {who}; waiting for it (up to {} minutes)",
        lock.path.display(),
        wait.as_secs() / 60
    ));
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        interrupted()?;
        std::thread::sleep(Duration::from_millis(200));
        if try_flock(lock.raw_fd())? {
            return Ok(lock);
        }
    }
    bail!(
        "gave up waiting for {} (held by {who}); wait for that run to end or stop it",
        lock.path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempDir;
    use std::os::unix::fs::PermissionsExt as _;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn directory_choice() {
        let all = [
            ("C1M_STATE_DIR", "/s"),
            ("XDG_RUNTIME_DIR", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(choose_dir(env(&all), 0).unwrap(), PathBuf::from("/s"));
        assert_eq!(
            choose_dir(env(&all[1..]), 0).unwrap(),
            PathBuf::from("/run/c1m")
        );
        assert_eq!(
            choose_dir(env(&all[1..]), 1000).unwrap(),
            PathBuf::from("/x/c1m")
        );
        assert_eq!(
            choose_dir(env(&all[2..]), 1000).unwrap(),
            PathBuf::from("/h/.cache/c1m")
        );
        assert_eq!(
            choose_dir(env(&[("XDG_RUNTIME_DIR", ""), ("HOME", "/h")]), 7).unwrap(),
            PathBuf::from("/h/.cache/c1m")
        );
        assert!(choose_dir(env(&[]), 1000).is_err());
        let e = choose_dir(env(&[("C1M_STATE_DIR", "rel")]), 0).unwrap_err();
        assert!(e.to_string().contains("not an absolute path"), "{e}");
    }

    #[test]
    fn creates_a_private_directory_and_refuses_unsafe_ones() {
        let t = TempDir::new();
        let dir = t.0.join("a/b/c1m");
        open_dir(&dir).expect("created");
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        open_dir(&dir).expect("again");

        let open = t.0.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = format!("{:#}", open_dir(&open).unwrap_err());
        assert!(e.contains("writable by group or others (mode 0777)"), "{e}");

        let link = t.0.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = format!("{:#}", open_dir(&link).unwrap_err());
        assert!(e.contains("is a symlink"), "{e}");

        let file = t.0.join("file");
        std::fs::write(&file, "").unwrap();
        let e = format!("{:#}", check_dir(&file, euid()).unwrap_err());
        assert!(e.contains("is not a directory"), "{e}");

        let e = format!("{:#}", check_dir(&dir, euid() + 1).unwrap_err());
        assert!(
            e.contains(&format!("owned by uid {}, not by you", euid())),
            "{e}"
        );
    }

    #[test]
    fn someone_elses_directory_is_refused() {
        if euid() != 0 {
            return; // chown needs root
        }
        let t = TempDir::new();
        let d = t.0.join("theirs");
        std::fs::create_dir(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(12345), None).unwrap();
        let e = format!("{:#}", open_dir(&d).unwrap_err());
        assert!(e.contains("owned by uid 12345, not by you (uid 0)"), "{e}");
    }

    #[test]
    fn lock_is_exclusive_private_and_refuses_symlinks() {
        let t = TempDir::new();
        let ok = || Ok(());
        let a = lock(&t.0, Duration::ZERO, ok).expect("first lock");
        let m = std::fs::metadata(&a.path).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        // A second open file description cannot take it.
        let e = lock(&t.0, Duration::from_millis(300), ok).unwrap_err();
        assert!(format!("{e:#}").contains("gave up waiting"), "{e:#}");
        drop(a);
        lock(&t.0, Duration::ZERO, ok).expect("free again");

        let other = TempDir::new();
        std::fs::remove_file(t.0.join("lock")).unwrap();
        std::os::unix::fs::symlink(other.0.join("x"), t.0.join("lock")).unwrap();
        assert!(lock(&t.0, Duration::ZERO, ok).is_err());
        assert!(!other.0.join("x").exists(), "followed the symlink");

        let loose = TempDir::new();
        let p = loose.0.join("lock");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = format!("{:#}", lock(&loose.0, Duration::ZERO, ok).unwrap_err());
        assert!(e.contains("writable by group or others"), "{e}");
    }

    #[test]
    fn state_file_is_in_the_directory() {
        assert_eq!(
            state_file(Path::new("/run/c1m")),
            PathBuf::from("/run/c1m/sysctl.saved")
        );
    }
}
