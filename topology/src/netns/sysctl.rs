//! Sysctls and network namespaces. A fresh namespace has its own copy of some `net.*`
//! keys (with the kernel's defaults, not the root namespace's values); the rest are one
//! machine-wide value. Which is which depends on the kernel, so it is probed inside a
//! namespace: a key belongs to the namespace when `/proc/sys` shows it there, writable,
//! under `net.` (`/proc/sys/net` is the only tree whose view follows the network
//! namespace; `fs.*`, `vm.*` and `kernel.*` look the same from everywhere). The kernel
//! hides init-only keys (`net.core.netdev_max_backlog`, `net.ipv4.tcp_mem`) from other
//! namespaces and shows a few read-only (`net.netfilter.nf_conntrack_max`): both stay
//! with the root namespace's save/apply/restore.

use super::guard::namespace_exists;
use super::{Netns, NetnsPlan};
use crate::sysctl::normalize;
use anyhow::{anyhow, bail, Context as _, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// A profile's settings split by where they apply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SysctlSplit {
    /// Keys each network namespace has its own copy of: apply them inside every
    /// namespace ([`apply_in`]); the leading `-` of an optional key is dropped.
    pub per_netns: Vec<(String, String)>,
    /// Machine-wide keys, exactly as given (a leading `-` kept): the root namespace's
    /// save/apply/restore handles them.
    pub global: Vec<(String, String)>,
    /// Optional (`-key`) keys this kernel has in no namespace.
    pub absent: Vec<String>,
}

/// One key set inside a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub key: String,
    /// The namespace's value before (the kernel's default for a fresh namespace).
    pub before: String,
    /// Read back after writing.
    pub after: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Absent,
    ReadOnly,
    Writable,
}

/// Splits `profile` (`(key, value)` as in a sysctl.conf, `-key` for optional keys) into
/// per-namespace and machine-wide keys, probing inside the existing namespace `ns`.
pub fn split_keys(ns: &str, profile: &[(String, String)]) -> Result<SysctlSplit> {
    let bare: Vec<&str> = profile
        .iter()
        .map(|(k, _)| k.trim_start_matches('-'))
        .collect();
    let paths = bare
        .iter()
        .map(|k| key_path(k))
        .collect::<Result<Vec<_>>>()?;
    let inside: Vec<Seen> = in_netns(ns, || paths.iter().map(|p| seen(p)).collect())?;
    let mut split = SysctlSplit::default();
    for (((key, value), name), (path, seen)) in
        profile.iter().zip(&bare).zip(paths.iter().zip(inside))
    {
        if seen == Seen::Writable && name.starts_with("net.") {
            split.per_netns.push((name.to_string(), value.clone()));
        } else if key.starts_with('-') && seen == Seen::Absent && !path.exists() {
            split.absent.push(name.to_string());
        } else {
            split.global.push((key.clone(), value.clone()));
        }
    }
    Ok(split)
}

/// Writes `settings` inside namespace `ns` (through `/proc/sys` from a thread that has
/// joined it) and reads each back; an error if the kernel kept another value. Nothing
/// needs restoring: the values die with the namespace. Keys in order (the profile's
/// order matters: `ip_local_reserved_ports` before `ip_local_port_range`).
pub fn apply_in(ns: &str, settings: &[(String, String)]) -> Result<Vec<Applied>> {
    let paths = settings
        .iter()
        .map(|(k, _)| key_path(k))
        .collect::<Result<Vec<_>>>()?;
    in_netns(ns, || {
        settings
            .iter()
            .zip(&paths)
            .map(|((key, value), path)| {
                let before = read_value(path)?;
                write_value(path, value).with_context(|| format!("setting {key} = {value} in {ns}"))?;
                let after = read_value(path)?;
                if normalize(&after) != normalize(value) {
                    bail!("{key} in {ns} reads {after:?} after writing {value:?}: the kernel did not take it");
                }
                Ok(Applied {
                    key: key.clone(),
                    before,
                    after,
                })
            })
            .collect()
    })?
}

impl Netns {
    /// [`split_keys`] probed in this topology's server namespace.
    pub fn split_sysctls(&self, profile: &[(String, String)]) -> Result<SysctlSplit> {
        split_keys(self.plan().server_ns(), profile)
    }

    /// [`apply_in`] for the server and every client namespace (the bridge's carries no
    /// TCP); what was applied, by namespace, for the run's record.
    pub fn apply_sysctls(
        &self,
        settings: &[(String, String)],
    ) -> Result<BTreeMap<String, Vec<Applied>>> {
        endpoint_namespaces(self.plan())
            .map(|ns| Ok((ns.to_owned(), apply_in(ns, settings)?)))
            .collect()
    }
}

fn endpoint_namespaces(plan: &NetnsPlan) -> impl Iterator<Item = &str> {
    plan.endpoints().map(|e| e.namespace.as_str())
}

/// Runs `f` on a new thread that has joined network namespace `ns`; the caller's
/// threads stay where they are, and the thread (with its namespace) ends with `f`.
/// Inside, `/proc/sys/net` and `/proc/thread-self/net` show the namespace's view
/// (`/proc/net` is the process's: its main thread's namespace).
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    if ns.is_empty() || ns.contains('/') || ns.starts_with('.') || !namespace_exists(ns) {
        bail!("no network namespace named {ns:?}");
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(Path::new("/run/netns").join(ns))
        .with_context(|| format!("opening network namespace {ns}"))?;
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            // SAFETY: `file` is an open nsfs file that outlives this call; setns with
            // CLONE_NEWNET only moves this thread, which runs `f` and then ends.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(anyhow!(
                    "joining network namespace {ns}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(f())
        });
        worker
            .join()
            .map_err(|_| anyhow!("the thread working inside {ns} panicked"))?
    })
}

/// `/proc/sys/a/b/c` for `a.b.c` (or `a/b/c`); refuses anything that could leave
/// `/proc/sys`.
fn key_path(key: &str) -> Result<PathBuf> {
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        && !key
            .split(['.', '/'])
            .any(|part| part.is_empty() || part == "..");
    if !ok {
        bail!("{key:?} is not a sysctl key");
    }
    Ok(Path::new("/proc/sys").join(key.replace('.', "/")))
}

fn seen(path: &Path) -> Seen {
    match fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o200 != 0 => Seen::Writable,
        Ok(_) => Seen::ReadOnly,
        Err(_) => Seen::Absent,
    }
}

fn read_value(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(normalize(&text))
}

fn write_value(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(format!("{value}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_into_proc_sys_only() {
        assert_eq!(
            key_path("net.ipv4.tcp_rmem").expect("key"),
            Path::new("/proc/sys/net/ipv4/tcp_rmem")
        );
        assert_eq!(
            key_path("net/core/somaxconn").expect("key"),
            Path::new("/proc/sys/net/core/somaxconn")
        );
        for bad in [
            "",
            "net..core",
            "../etc/passwd",
            "/etc/passwd",
            "net.core.x y",
            "a.b.",
        ] {
            assert!(key_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_compare_by_words() {
        assert_eq!(normalize("1024\t65535\n"), "1024 65535");
    }

    #[test]
    fn unknown_namespace_is_an_error() {
        let err = split_keys("c1m-srv-nosuch", &[]).expect_err("no namespace");
        assert!(
            format!("{err:#}").contains("no network namespace"),
            "{err:#}"
        );
        assert!(apply_in("../x", &[]).is_err());
    }
}
