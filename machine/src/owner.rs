//! Under sudo, what a run writes into the user's checkout belongs to that user, not to
//! root: the result folders are handed over at the end of every run.

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd as _, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::lchown;
use std::path::Path;

/// The invoking user's (uid, gid) when root runs the kit through sudo; None otherwise.
pub fn sudo_owner() -> Option<(u32, u32)> {
    if !crate::preflight::is_root() {
        return None;
    }
    parse_owner(
        std::env::var("SUDO_UID").ok().as_deref(),
        std::env::var("SUDO_GID").ok().as_deref(),
    )
}

/// (uid, gid) from sudo's variables; None for root or anything unparsable.
fn parse_owner(uid: Option<&str>, gid: Option<&str>) -> Option<(u32, u32)> {
    let uid: u32 = uid?.trim().parse().ok()?;
    if uid == 0 {
        return None;
    }
    let gid = gid.and_then(|g| g.trim().parse().ok()).unwrap_or(uid);
    Some((uid, gid))
}

/// Gives `path` and everything below it to (uid, gid). Symlinks are changed themselves,
/// never followed, and never descended into. Folders are walked by file descriptor
/// (`openat` with `O_NOFOLLOW`, `fchownat` without following): a name swapped for a
/// link while the walk runs is changed as a link, never gone through.
pub fn give_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    match open_dir(libc::AT_FDCWD, path) {
        Ok(fd) => give_dir(&fd, uid, gid, 0),
        // Not a folder (or a link): change the entry itself.
        Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => Ok(lchown(path, Some(uid), Some(gid))?),
        Err(e) => Err(e.into()),
    }
}

/// Opens the folder `name` relative to `dirfd`, refusing a symlink.
fn open_dir<P: ?Sized + nix::NixPath>(dirfd: RawFd, name: &P) -> nix::Result<OwnedFd> {
    // SAFETY: `dirfd` is AT_FDCWD or a descriptor the caller holds open for this call.
    let dirfd = unsafe { BorrowedFd::borrow_raw(dirfd) };
    openat(
        dirfd,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
}

/// Folders nest at most this deep in a results tree (a bound against a loop).
const MAX_DEPTH: usize = 64;

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`; an empty name: `dir` itself.
fn chown_at(dir: &OwnedFd, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let c = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: `dir` is an open descriptor and `c` a NUL-terminated string, both alive
    // for the call; fchownat keeps neither.
    let rc = unsafe { libc::fchownat(dir.as_raw_fd(), c.as_ptr(), uid, gid, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn give_dir(dir: &OwnedFd, uid: u32, gid: u32, depth: usize) -> io::Result<()> {
    chown_at(dir, OsStr::new(""), uid, gid)?;
    if depth >= MAX_DEPTH {
        return Err(io::Error::other("results tree nested too deep"));
    }
    // /proc/self/fd/N names the open folder itself, not a path looked up again.
    let names: Vec<_> = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    for name in names {
        let name = name.as_os_str();
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            match open_dir(dir.as_raw_fd(), name) {
                Ok(sub) => give_dir(&sub, uid, gid, depth + 1)?,
                // Swapped for something else since the stat: change that entry only.
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => chown_at(dir, name, uid, gid)?,
                Err(e) => return Err(e.into()),
            }
        } else {
            chown_at(dir, name, uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sudo_variables_name_the_owner() {
        assert_eq!(parse_owner(Some("1000"), Some("1001")), Some((1000, 1001)));
        assert_eq!(parse_owner(Some("1000"), None), Some((1000, 1000)));
        assert_eq!(parse_owner(Some("0"), Some("0")), None);
        assert_eq!(parse_owner(Some("x"), Some("1")), None);
        assert_eq!(parse_owner(None, Some("1")), None);
    }

    #[test]
    fn a_tree_changes_owner_without_following_links() {
        if !crate::preflight::is_root() {
            eprintln!("skipping: changing owners needs root");
            return;
        }
        let base = std::env::temp_dir().join(format!("c1m-owner-{}", std::process::id()));
        let uid = |p: &Path| std::fs::symlink_metadata(p).expect("stat").uid();
        let outside = base.join("outside");
        let tree = base.join("tree");
        std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
        std::fs::write(tree.join("sub/file"), "x").expect("write");
        std::fs::write(&outside, "y").expect("write");
        std::os::unix::fs::symlink(&outside, tree.join("link")).expect("symlink");
        let outdir = base.join("outdir");
        std::fs::create_dir_all(&outdir).expect("mkdir");
        std::fs::write(outdir.join("f"), "z").expect("write");
        std::os::unix::fs::symlink(&outdir, tree.join("sub/dirlink")).expect("symlink");
        give_tree(&tree, 65534, 65534).expect("chown");
        assert_eq!(uid(&outdir), 0, "a linked folder is not descended into");
        assert_eq!(uid(&outdir.join("f")), 0);
        assert_eq!(uid(&tree.join("sub/dirlink")), 65534);
        // A link given as the top is changed itself, never followed.
        std::os::unix::fs::symlink(&outdir, base.join("toplink")).expect("symlink");
        give_tree(&base.join("toplink"), 65534, 65534).expect("chown link");
        assert_eq!(uid(&outdir), 0);
        assert_eq!(uid(&tree), 65534);
        assert_eq!(uid(&tree.join("sub/file")), 65534);
        assert_eq!(uid(&tree.join("link")), 65534);
        assert_eq!(uid(&outside), 0, "the link's target must keep its owner");
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
