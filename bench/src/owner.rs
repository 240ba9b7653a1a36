//! Under sudo, what a run writes into the user's checkout belongs to that user, not to
//! root: the result folders are handed over at the end of every run.

use std::io;
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
/// never followed, and never descended into.
pub fn give_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    lchown(path, Some(uid), Some(gid))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            give_tree(&entry?.path(), uid, gid)?;
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
        let outside = base.join("outside");
        let tree = base.join("tree");
        std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
        std::fs::write(tree.join("sub/file"), "x").expect("write");
        std::fs::write(&outside, "y").expect("write");
        std::os::unix::fs::symlink(&outside, tree.join("link")).expect("symlink");
        give_tree(&tree, 65534, 65534).expect("chown");
        let uid = |p: &Path| std::fs::symlink_metadata(p).expect("stat").uid();
        assert_eq!(uid(&tree), 65534);
        assert_eq!(uid(&tree.join("sub/file")), 65534);
        assert_eq!(uid(&tree.join("link")), 65534);
        assert_eq!(uid(&outside), 0, "the link's target must keep its owner");
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
