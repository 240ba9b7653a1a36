//! A host is tuned only once its watchdog holds the host's lock and said so.

use super::remote::{wait_ready, READY_LINE};
use c1m_machine::tempdir::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn spawn(
    t: &TempDir,
    name: &str,
    argv: &[&str],
    env: &[(&str, &Path)],
) -> (Child, PathBuf, PathBuf) {
    let (log, err) = (
        t.0.join(format!("{name}.log")),
        t.0.join(format!("{name}.err")),
    );
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(crate::safe_fs::create(&log).unwrap())
        .stderr(crate::safe_fs::create(&err).unwrap());
    for (k, v) in env {
        c.env(k, v);
    }
    (c.spawn().expect("spawn"), log, err)
}

fn end(mut c: Child) {
    drop(c.stdin.take());
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn a_watchdog_that_failed_to_start_stops_the_setup() {
    let t = TempDir::new();
    let script = format!("echo '{READY_LINE}'; sleep 5");
    let (mut c, log, err) = spawn(&t, "ok", &["sh", "-c", &script], &[]);
    wait_ready(&mut c, &log, &err, "h").expect("ready");
    end(c);
    let (mut c, log, err) = spawn(
        &t,
        "bad",
        &[
            "sh",
            "-c",
            "echo 'sudo: a password is required' >&2; exit 1",
        ],
        &[],
    );
    let e = format!("{:#}", wait_ready(&mut c, &log, &err, "h1").unwrap_err());
    assert!(
        e.contains("host h1: its watchdog ended before it was ready")
            && e.contains("nothing was changed there: sudo: a password is required"),
        "{e}"
    );
    end(c);
}

/// The files c1m-host.sh finds next to it on a host.
fn stage(t: &TempDir, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let d = t.0.join(name);
    std::fs::create_dir_all(d.join("scripts")).unwrap();
    std::fs::copy(root.join("scripts/c1m-host.sh"), d.join("c1m-host.sh")).unwrap();
    for f in ["lib.sh", "sysctl-restore.sh"] {
        std::fs::copy(root.join("scripts").join(f), d.join("scripts").join(f)).unwrap();
    }
    d
}

#[test]
fn two_runs_never_share_a_host() {
    let t = TempDir::new();
    let state = t.0.join("state");
    let env = [("C1M_STATE_DIR", state.as_path())];
    let watchdog = |name: &str, token: &str| {
        let d = stage(&t, name);
        let sh = d.join("c1m-host.sh");
        let argv = ["bash", sh.to_str().unwrap(), "watchdog", token];
        spawn(&t, name, &argv, &env)
    };
    let (mut a, log, err) = watchdog("a", "hosts-aaaaaa-0");
    wait_ready(&mut a, &log, &err, "a").expect("the first run takes the host");
    // Another "host" of the same run on this machine goes on.
    let (mut b, log, err) = watchdog("b", "hosts-aaaaaa-1");
    wait_ready(&mut b, &log, &err, "b").expect("same run");
    // Another run is refused before it changes anything.
    let (mut c, log, err) = watchdog("c", "hosts-bbbbbb-0");
    let e = format!("{:#}", wait_ready(&mut c, &log, &err, "c").unwrap_err());
    assert!(e.contains("another c1m run (hosts-aaaaaa) holds"), "{e}");
    end(c);
    end(b);
    // Once the first run's watchdog is done, the host is free again.
    drop(a.stdin.take());
    let _ = a.wait();
    let (mut d, log, err) = watchdog("d", "hosts-bbbbbb-0");
    wait_ready(&mut d, &log, &err, "d").expect("free again");
    end(d);
}
