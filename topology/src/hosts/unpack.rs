//! Unpacking a results folder a remote host sent (a tar stream), as root, trusting
//! nothing in it: only regular files and folders are written, with the kit's own modes
//! (no owners, no setuid, no mode from the archive, nothing done to the top folder),
//! every name checked (no absolute names, no `..`), every write through [`safe_fs`]
//! (no symlink followed), and the whole stream bounded. Links, devices, FIFOs and
//! anything else are dropped and named.
//!
//! The reader knows what GNU and POSIX tar write for a plain folder: ustar headers, GNU
//! long names (`L`), pax `path` records (`x`; `g` ignored).

use crate::safe_fs;
use anyhow::{bail, Context as _, Result};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The most a fetched folder may hold; results are histograms, logs and JSON.
pub const FETCH_LIMIT: u64 = 1 << 30;
/// The most entries a fetched folder may hold.
const MAX_ENTRIES: usize = 100_000;
/// The longest name (a long-name or pax record) accepted.
const MAX_NAME: u64 = 4096;

/// What an unpack wrote and what it refused.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub files: usize,
    /// "name (what it was)" for each entry not written.
    pub dropped: Vec<String>,
}

/// An octal header field (NUL or space terminated).
fn octal(field: &[u8]) -> Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        bail!("a tar header uses a base-256 number (a file of 8 GiB or more)");
    }
    let s: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).with_context(|| format!("bad number {s:?} in a tar header"))
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The relative path of an archive name, or None if it may not be written: absolute,
/// with a `..` component or a NUL. `./` and empty components are dropped; the top
/// folder itself (`.`) gives an empty path.
pub fn vetted_name(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') || name.contains('\0') {
        return None;
    }
    let mut p = PathBuf::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => p.push(c),
        }
    }
    Some(p)
}

/// Reads exactly `n` bytes of entry data (or fails on a short stream).
fn read_data(r: &mut impl Read, n: u64) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    r.take(n).read_to_end(&mut v)?;
    if v.len() as u64 != n {
        bail!("the tar stream ends inside an entry");
    }
    Ok(v)
}

/// Skips `n` bytes.
fn skip(r: &mut impl Read, n: u64) -> Result<()> {
    if io::copy(&mut r.take(n), &mut io::sink())? != n {
        bail!("the tar stream ends inside an entry");
    }
    Ok(())
}

/// The `path` of a pax extended header, if it has one.
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().find_map(|l| {
        let (_, rec) = l.split_once(' ')?;
        rec.strip_prefix("path=").map(str::to_owned)
    })
}

fn kind(t: u8) -> &'static str {
    match t {
        b'1' => "hard link",
        b'2' => "symlink",
        b'3' => "character device",
        b'4' => "block device",
        b'6' => "FIFO",
        _ => "not a file or folder",
    }
}

/// Unpacks the tar stream `r` into the existing folder `to` (see the module's text).
/// Files already there are replaced. Fails on a malformed stream or one over
/// [`FETCH_LIMIT`]; what was written before stays.
pub fn unpack_vetted(mut r: impl Read, to: &Path) -> Result<Unpacked> {
    let mut out = Unpacked::default();
    let mut total = 0u64;
    let mut next_name: Option<String> = None;
    for _ in 0..MAX_ENTRIES {
        let mut h = [0u8; 512];
        if let Err(e) = r.read_exact(&mut h) {
            // Some writers stop after the last entry's data without the end blocks.
            if e.kind() == io::ErrorKind::UnexpectedEof && out.files > 0 {
                return Ok(out);
            }
            return Err(e).context("the tar stream ends before its end marker");
        }
        if h.iter().all(|&b| b == 0) {
            return Ok(out);
        }
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if octal(&h[148..156])? != sum {
            bail!("not a tar stream (header checksum mismatch)");
        }
        let size = octal(&h[124..136])?;
        let padded = size.div_ceil(512) * 512;
        let typ = h[156];
        match typ {
            b'L' | b'x' if size > MAX_NAME => bail!("a tar name record of {size} bytes"),
            b'L' => {
                let d = read_data(&mut r, size)?;
                skip(&mut r, padded - size)?;
                next_name = Some(cstr(&d));
                continue;
            }
            b'x' => {
                let d = read_data(&mut r, size)?;
                skip(&mut r, padded - size)?;
                next_name = pax_path(&d).or(next_name);
                continue;
            }
            b'g' => {
                skip(&mut r, padded)?;
                continue;
            }
            _ => {}
        }
        let name = next_name.take().unwrap_or_else(|| {
            let name = cstr(&h[0..100]);
            // POSIX ustar: a prefix before the name (GNU's magic uses those bytes otherwise).
            match (&h[257..263], cstr(&h[345..500])) {
                (b"ustar\0", pre) if !pre.is_empty() => format!("{pre}/{name}"),
                _ => name,
            }
        });
        let is_data = matches!(typ, b'0' | 0 | b'7');
        let is_dir = typ == b'5';
        total = total.saturating_add(if is_data { size } else { 0 });
        if total > FETCH_LIMIT {
            bail!("the fetched folder is over {FETCH_LIMIT} bytes: not unpacking the rest");
        }
        let rel = vetted_name(&name);
        match (rel, is_data, is_dir) {
            (Some(rel), true, _) if !rel.as_os_str().is_empty() => {
                let path = to.join(&rel);
                if let Some(parent) = rel.parent() {
                    make_dirs(to, parent)?;
                }
                let mut f = safe_fs::create(&path)?;
                if io::copy(&mut (&mut r).take(size), &mut f)? != size {
                    bail!("the tar stream ends inside {name}");
                }
                skip(&mut r, padded - size)?;
                out.files += 1;
                continue;
            }
            (Some(rel), false, true) => make_dirs(to, &rel)?,
            (None, _, _) => out
                .dropped
                .push(format!("{name} (name outside the folder)")),
            (Some(_), false, false) => out.dropped.push(format!("{name} ({})", kind(typ))),
            (Some(_), true, _) => out.dropped.push(format!("{name} (a file as the folder)")),
        }
        skip(&mut r, padded)?;
    }
    bail!("the fetched folder has over {MAX_ENTRIES} entries")
}

/// Makes each folder of the relative path `rel` below `to`, never through a link.
fn make_dirs(to: &Path, rel: &Path) -> Result<()> {
    let mut p = to.to_path_buf();
    for c in rel.components() {
        p.push(c);
        safe_fs::ensure_dir(&p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_machine::tempdir::TempDir;
    use std::os::unix::fs::PermissionsExt as _;

    /// One ustar header block (GNU magic, like `tar -cf`), its checksum filled in.
    fn header(name: &str, typ: u8, mode: u32, size: usize, link: &str) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let field = |h: &mut [u8], at: usize, len: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        field(&mut h, 100, 8, u64::from(mode));
        field(&mut h, 108, 8, 12345);
        field(&mut h, 116, 8, 12345);
        field(&mut h, 124, 12, size as u64);
        field(&mut h, 136, 12, 0);
        h[156] = typ;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..265].copy_from_slice(b"ustar  \0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn entry(tar: &mut Vec<u8>, name: &str, typ: u8, mode: u32, data: &[u8], link: &str) {
        tar.extend(header(name, typ, mode, data.len(), link));
        tar.extend(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }

    #[test]
    fn a_hostile_stream_writes_only_plain_files_inside() {
        let t = TempDir::new();
        let to = t.0.join("case");
        std::fs::create_dir(&to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o750)).unwrap();
        let mut tar = Vec::new();
        entry(&mut tar, "./", b'5', 0o777, b"", "");
        entry(&mut tar, "./suid", b'0', 0o4755, b"x", "");
        entry(&mut tar, "./link", b'2', 0o777, b"", "/etc/passwd");
        entry(&mut tar, "./hard", b'1', 0o644, b"", "/etc/shadow");
        entry(&mut tar, "../escape", b'0', 0o644, b"e", "");
        entry(&mut tar, "./a/../../escape2", b'0', 0o644, b"e", "");
        entry(&mut tar, "/abs", b'0', 0o644, b"e", "");
        entry(&mut tar, "./fifo", b'6', 0o666, b"", "");
        entry(&mut tar, "./sub/", b'5', 0o777, b"", "");
        entry(&mut tar, "./sub/ok.json", b'0', 0o600, b"{}", "");
        // A long name, the GNU way.
        let long = format!("./sub/{}", "n".repeat(150));
        entry(&mut tar, "././@LongLink", b'L', 0o644, long.as_bytes(), "");
        entry(&mut tar, "./sub/short", b'0', 0o644, b"long", "");
        tar.extend([0u8; 1024]);
        let u = unpack_vetted(&tar[..], &to).unwrap();
        assert_eq!(u.files, 3, "{u:?}");
        assert_eq!(u.dropped.len(), 6, "{u:?}");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&to), 0o750, "the ./ entry changed the folder");
        assert_eq!(mode(&to.join("suid")), 0o644, "setuid or archive mode kept");
        assert_eq!(mode(&to.join("sub")), 0o755);
        assert_eq!(std::fs::read(to.join("sub/ok.json")).unwrap(), b"{}");
        assert_eq!(
            std::fs::read(to.join("sub").join("n".repeat(150))).unwrap(),
            b"long"
        );
        for gone in ["link", "hard", "fifo", "escape", "escape2", "abs"] {
            assert!(std::fs::symlink_metadata(to.join(gone)).is_err(), "{gone}");
        }
        assert!(std::fs::symlink_metadata(t.0.join("escape")).is_err());
        let names: Vec<String> = std::fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_planted_link_in_the_folder_is_not_written_through() {
        let t = TempDir::new();
        let to = t.0.join("case");
        std::fs::create_dir(&to).unwrap();
        let outside = t.0.join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, to.join("server.json")).unwrap();
        let mut tar = Vec::new();
        entry(&mut tar, "./server.json", b'0', 0o644, b"{}", "");
        tar.extend([0u8; 1024]);
        assert!(unpack_vetted(&tar[..], &to).is_err());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    }

    #[test]
    fn what_gnu_tar_writes_for_a_folder_unpacks() {
        let t = TempDir::new();
        let from = t.0.join("from");
        std::fs::create_dir_all(from.join("server-procs")).unwrap();
        std::fs::write(from.join("server.json"), "{}").unwrap();
        let long = "l".repeat(120);
        std::fs::write(from.join("server-procs").join(&long), "1").unwrap();
        let tar = std::process::Command::new("tar")
            .args(["-cf", "-", "-C"])
            .arg(&from)
            .arg(".")
            .output()
            .expect("tar");
        assert!(tar.status.success());
        let to = t.0.join("to");
        std::fs::create_dir(&to).unwrap();
        let u = unpack_vetted(&tar.stdout[..], &to).unwrap();
        assert_eq!((u.files, u.dropped.len()), (2, 0), "{u:?}");
        assert_eq!(
            std::fs::read(to.join("server-procs").join(long)).unwrap(),
            b"1"
        );
    }

    #[test]
    fn malformed_streams_are_errors() {
        let t = TempDir::new();
        assert!(
            unpack_vetted(&[1u8; 512][..], &t.0).is_err(),
            "bad checksum"
        );
        let mut tar = Vec::new();
        entry(&mut tar, "./big", b'0', 0o644, b"0123456789", "");
        tar.truncate(515);
        assert!(unpack_vetted(&tar[..], &t.0).is_err(), "short data");
        assert!(unpack_vetted(&[][..], &t.0).is_err(), "empty stream");
    }

    #[test]
    fn names_are_vetted() {
        assert_eq!(vetted_name("./a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(vetted_name("./"), Some(PathBuf::new()));
        assert_eq!(vetted_name("a//./b/"), Some(PathBuf::from("a/b")));
        assert_eq!(vetted_name("../a"), None);
        assert_eq!(vetted_name("a/../b"), None);
        assert_eq!(vetted_name("/etc/passwd"), None);
    }
}
