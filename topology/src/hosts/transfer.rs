//! Files and commands on a host over ssh: one command's output ([`capture`]), a file
//! read or written, the programs of a run stopped, a folder fetched back (vetted).

use super::ssh::{quote, Ssh, SSH_FAILED};
use super::unpack::unpack_vetted;
use anyhow::{bail, Context as _, Result};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `argv` (an ssh) with stdin from `input` (or nothing); its stdout, or an error
/// naming `target` with ssh's own message.
pub(super) fn capture(
    argv: &[String],
    input: Option<&Path>,
    target: &str,
    what: &str,
) -> Result<String> {
    let (prog, args) = argv.split_first().context("empty command")?;
    let stdin = match input {
        Some(p) => {
            Stdio::from(fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?)
        }
        None => Stdio::null(),
    };
    let out = Command::new(prog)
        .args(args)
        .stdin(stdin)
        .output()
        .with_context(|| format!("cannot run {prog} (is openssh-client installed?)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        let how = if out.status.code() == Some(SSH_FAILED) {
            "unreachable over ssh (BatchMode: key access needed)"
        } else {
            "failed"
        };
        bail!("host {target}: {what}: {how}: {err}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A file on a remote host (`cat`), None if unreadable.
pub fn read_file(ssh: &Ssh, target: &str, path: &str) -> Option<String> {
    capture(&ssh.words(target, &["cat", path]), None, target, "reading").ok()
}

/// Copies the local file `from` to `to` on the host (its folder made first).
pub fn put_file(ssh: &Ssh, target: &str, from: &Path, to: &str) -> Result<()> {
    let folder = to.rsplit_once('/').map_or(".", |(d, _)| d);
    let line = format!("mkdir -p -- {} && cat > {}", quote(folder), quote(to));
    capture(
        &ssh.shell(target, &line),
        Some(from),
        target,
        "writing a file",
    )
    .map(|_| ())
}

/// SIGTERM to every program started there with `c1m-host.sh run`.
pub fn stop_programs(ssh: &Ssh, target: &str, dir: &str) -> Result<()> {
    capture(
        &ssh.in_dir(target, dir, &["./c1m-host.sh", "stop"]),
        None,
        target,
        "stopping its programs",
    )
    .map(|_| ())
}

/// Copies the remote folder `from` into the local folder `to` (tar over ssh), unpacked
/// by [`unpack_vetted`]: only plain files and folders, never through a link. Anything
/// else the host sent is named in the error.
pub fn fetch_dir(ssh: &Ssh, target: &str, from: &str, to: &Path) -> Result<()> {
    crate::safe_fs::ensure_dir(to)?;
    let remote = format!("cd {} && tar -cf - .", quote(from));
    let mut src = Command::new("ssh");
    let argv = ssh.shell(target, &remote);
    src.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = src.spawn().context("cannot start ssh")?;
    let out = child.stdout.take().context("no stdout")?;
    let unpacked = unpack_vetted(out, to);
    if unpacked.is_err() {
        let _ = child.kill();
    }
    let sst = child.wait_with_output()?;
    let u = unpacked.with_context(|| format!("host {target}: fetching {from}"))?;
    if !sst.status.success() {
        bail!(
            "host {target}: cannot fetch {from}: {}",
            String::from_utf8_lossy(&sst.stderr).trim()
        );
    }
    if !u.dropped.is_empty() {
        bail!(
            "host {target}: {from} held entries that are not plain files or folders, not copied: {}",
            u.dropped.join(", ")
        );
    }
    Ok(())
}
