//! Every result file and folder the kit writes (often as root) goes through here, so no
//! write ever follows a symlink or lands in a folder someone else planted:
//! - [`create_dir_new`]: a run folder is made fresh; an existing name (a folder, or a
//!   link to one) is an error, never reused.
//! - [`ensure_dir`]: a folder below a fresh one: made if absent, else it must be a real
//!   folder (not a link).
//! - [`write`], [`append`], [`create`], [`open_append`], [`write_new`]: files opened
//!   with `O_NOFOLLOW` (a link at the name is refused), `O_NONBLOCK` (a FIFO planted
//!   there does not hang the run) and then checked to be a regular file before a byte
//!   is written or truncated.
//! - [`check_out_dir`]: the `--out` folder and every folder above it may be changed
//!   only by root or the sudo user, so nobody else can swap a name under the run.

use anyhow::{bail, Context as _, Result};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Mode of the files and folders the kit writes (readable by all, as results are).
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Creates the folder `path`; its parent must exist. An existing entry of that name
/// (folder, file or symlink) is an error.
pub fn create_dir_new(path: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(DIR_MODE)
        .create(path)
        .with_context(|| {
            format!(
                "cannot create the new folder {} (a run never reuses or follows an existing name: remove or rename what is there)",
                path.display()
            )
        })
}

/// Creates the new folder `base/rel` (a case: `uring-c100` or `round-2/uring-c100`):
/// the folders between are made if absent, the last one must not exist.
pub fn create_dir_new_below(base: &Path, rel: &Path) -> Result<std::path::PathBuf> {
    let dir = base.join(rel);
    let mut p = base.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            p.push(c);
            ensure_dir(&p)?;
        }
    }
    create_dir_new(&dir)?;
    Ok(dir)
}

/// Makes the folder `path` if it is absent; an existing entry must be a real folder.
pub fn ensure_dir(path: &Path) -> Result<()> {
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let m = std::fs::symlink_metadata(path)
                .with_context(|| format!("cannot examine {}", path.display()))?;
            if !m.file_type().is_dir() {
                bail!(
                    "{} exists and is not a folder (a symlink is never followed): remove it",
                    path.display()
                );
            }
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Opens `path` for writing without following a link, and checks it is a regular file.
fn open(path: &Path, how: &mut OpenOptions) -> Result<File> {
    let f = how
        .write(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| {
            format!(
                "cannot write {} (a symlink there is refused, never followed)",
                path.display()
            )
        })?;
    let m = f
        .metadata()
        .with_context(|| format!("cannot examine {}", path.display()))?;
    if !m.is_file() {
        bail!("{} is not a regular file: not writing it", path.display());
    }
    Ok(f)
}

/// `path` emptied (or created) for writing: for a child's stdout or a file written in parts.
pub fn create(path: &Path) -> Result<File> {
    let f = open(path, OpenOptions::new().create(true).truncate(false))?;
    f.set_len(0)
        .with_context(|| format!("cannot truncate {}", path.display()))?;
    Ok(f)
}

/// `path` opened to append to (created if absent).
pub fn open_append(path: &Path) -> Result<File> {
    open(path, OpenOptions::new().create(true).append(true))
}

/// Replaces the contents of `path` with `data`.
pub fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    create(path)?
        .write_all(data.as_ref())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Appends `data` to `path` (created if absent).
pub fn append(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    open_append(path)?
        .write_all(data.as_ref())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Creates `path` with `data`; an existing entry of that name is an error.
pub fn write_new(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    open(path, OpenOptions::new().create_new(true))?
        .write_all(data.as_ref())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Why the folder of metadata `m` may be changed by someone other than `trusted` (root
/// and the sudo user), or None. A sticky folder above the last one (like /tmp) lets
/// others add names but not swap ours.
fn foreign_writable(m: &std::fs::Metadata, trusted: &[u32], last: bool) -> Option<String> {
    if !trusted.contains(&m.uid()) {
        return Some(format!("is owned by uid {}", m.uid()));
    }
    let mode = m.mode() & 0o7777;
    let sticky = mode & libc::S_ISVTX != 0;
    if mode & 0o022 != 0 && (last || !sticky) {
        return Some(format!("is writable by group or others (mode {mode:04o})"));
    }
    None
}

/// Refuses a results folder that anyone but root or the sudo user (`sudo_uid`) could
/// change: the folder itself and every folder above it. `dir` must exist.
pub fn check_out_dir(dir: &Path, sudo_uid: Option<u32>) -> Result<()> {
    let real = std::fs::canonicalize(dir)
        .with_context(|| format!("cannot resolve the results folder {}", dir.display()))?;
    let mut trusted = vec![0, crate::statedir::euid()];
    trusted.extend(sudo_uid);
    let chain: Vec<&Path> = real.ancestors().collect();
    for (i, p) in chain.iter().enumerate() {
        let m = std::fs::symlink_metadata(p)
            .with_context(|| format!("cannot examine {}", p.display()))?;
        if let Some(why) = foreign_writable(&m, &trusted, i == 0) {
            bail!(
                "refusing the results folder {}: {} {why}, so another user could swap the run's folders; pick an --out folder that only you (and root) can write",
                dir.display(),
                p.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempDir;
    use std::os::unix::fs::{symlink, PermissionsExt as _};

    #[test]
    fn writes_never_follow_a_planted_link() {
        let t = TempDir::new();
        let target = t.0.join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = t.0.join("link");
        symlink(&target, &link).unwrap();
        assert!(write(&link, "x").is_err());
        assert!(append(&link, "x").is_err());
        assert!(create(&link).is_err());
        assert!(write_new(&link, "x").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        // A FIFO is refused, not waited on.
        nix::unistd::mkfifo(
            &t.0.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(write(&t.0.join("fifo"), "x").is_err());
        // Plain files work, and are replaced or appended to.
        let f = t.0.join("f");
        write(&f, "ab").unwrap();
        append(&f, "c").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "abc");
        write(&f, "d").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "d");
        assert!(write_new(&f, "e").is_err());
    }

    #[test]
    fn new_folders_are_never_an_existing_name() {
        let t = TempDir::new();
        let elsewhere = t.0.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let planted = t.0.join("2026-01-01-0000-host-pingpong");
        symlink(&elsewhere, &planted).unwrap();
        let e = format!("{:#}", create_dir_new(&planted).unwrap_err());
        assert!(e.contains("never reuses or follows"), "{e}");
        assert!(ensure_dir(&planted).is_err(), "a link is not a folder");
        assert!(
            create_dir_new(&elsewhere).is_err(),
            "an existing folder too"
        );
        let fresh = t.0.join("fresh");
        create_dir_new(&fresh).unwrap();
        ensure_dir(&fresh).unwrap();
        ensure_dir(&fresh.join("sub")).unwrap();
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn results_folder_writable_by_others_is_refused() {
        let t = TempDir::new();
        let out = t.0.join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_out_dir(&out, None).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = format!("{:#}", check_out_dir(&out, None).unwrap_err());
        assert!(e.contains("writable by group or others (mode 0777)"), "{e}");
        // /tmp itself is sticky and world-writable: fine above the folder, not as it.
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(check_out_dir(&out, None).is_err());
    }

    #[test]
    fn results_folder_of_another_user_is_refused() {
        if crate::statedir::euid() != 0 {
            return; // chown needs root
        }
        let t = TempDir::new();
        let out = t.0.join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::chown(&out, Some(4242), None).unwrap();
        let e = format!("{:#}", check_out_dir(&out, None).unwrap_err());
        assert!(e.contains("is owned by uid 4242"), "{e}");
        check_out_dir(&out, Some(4242)).expect("the sudo user's own folder");
    }
}
