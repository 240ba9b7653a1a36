//! `--perf` for real: `perf record` of a c1m-server (uring, then epoll) under a short
//! c1m-loadgen run, cut to the loadgen's measured window, folded, drawn and broken
//! down as the orchestrator does it. Skips, saying why, where perf cannot sample or the
//! release binaries are not built.

use c1m_bench::observe::perf::{find, record_argv, Stopped};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/release/`, where c1m-server and c1m-loadgen are.
fn release_dir() -> PathBuf {
    // This test is target/<profile>/deps/perf-HASH.
    let exe = std::env::current_exe().expect("the test's path");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .join("release")
}

/// perf, the server and the loadgen, or why this test cannot run here.
fn tools() -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let perf = find().map_err(|e| format!("{e:#}"))?;
    let sampled = Command::new(&perf)
        .args(["stat", "-e", "cpu-clock", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !sampled {
        return Err("perf cannot sample here (perf_event_paranoid, or no cpu-clock)".into());
    }
    let dir = release_dir();
    let (server, loadgen) = (dir.join("c1m-server"), dir.join("c1m-loadgen"));
    if !server.exists() || !loadgen.exists() {
        return Err("c1m-server and c1m-loadgen not built (cargo build --release)".into());
    }
    Ok((perf, server, loadgen))
}

/// Stops a child with `sig`, bounded, then kills it.
fn stop(child: &mut Child, sig: libc::c_int) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill takes a pid and a signal number; the child is ours and not reaped.
    unsafe { libc::kill(pid, sig) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A profiled run of `backend` into `dir`.
fn profiled_run(backend: &str, dir: &Path, (perf, server, loadgen): &(PathBuf, PathBuf, PathBuf)) {
    let mut srv = Command::new(server)
        .args(["--backend", backend])
        .args(["--listen", "127.0.0.1:0"])
        .args(["--cpus", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting c1m-server");
    let out = srv.stdout.take().expect("its stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("its first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no `listening on` from c1m-server: {line}"))
        .to_owned();
    let pid = srv.id() as i32;
    let argv = record_argv(perf, &[pid], &dir.join("perf.data"));
    let mut rec = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting perf record");
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new(loadgen)
        .args([
            "run",
            "--target",
            &addr,
            "--connections",
            "50",
            "--duration",
            "1",
        ])
        .args(["--warmup", "1", "--out"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running c1m-loadgen");
    stop(&mut rec, libc::SIGINT);
    stop(&mut srv, libc::SIGTERM);
    assert!(status.success(), "c1m-loadgen: {status}");
    let window = c1m_bench::http::cpu::loadgen_window(&dir.join("latency.hlog")).expect("window");
    Stopped::new(perf.clone(), vec![pid])
        .write(dir, &format!("{backend}-c50"), window, "latency.hlog")
        .expect("the profile");
}

#[test]
fn a_profile_of_a_short_run_has_a_flame_graph_and_shares_summing_to_100() {
    let tools = match tools() {
        Ok(t) => t,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    for backend in ["uring", "epoll"] {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("perf-test-{backend}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the case folder");
        profiled_run(backend, &dir, &tools);
        assert!(!dir.join("perf.data").exists(), "perf.data left behind");
        let folded = std::fs::read_to_string(dir.join("perf.folded")).expect("perf.folded");
        assert!(folded.contains("_[k]"), "no kernel frames: {folded}");
        let svg = std::fs::read_to_string(dir.join("flamegraph.svg")).expect("flamegraph.svg");
        assert!(svg.contains("<svg") && svg.contains("samples"), "{backend}");
        let p: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("profile.json")).unwrap())
                .expect("profile.json");
        assert!(p["samples"].as_u64().unwrap_or(0) > 0, "{p}");
        let sum: f64 = p["shares_pct"]
            .as_object()
            .expect("shares")
            .values()
            .filter_map(serde_json::Value::as_f64)
            .sum();
        assert!(
            (sum - 100.0).abs() < 0.1,
            "{backend}: shares sum to {sum}: {p:#}"
        );
        let own = if backend == "uring" {
            "io_uring"
        } else {
            "epoll"
        };
        assert!(
            p["samples_by_category"][own].as_u64().unwrap_or(0) > 0,
            "{backend}: no {own} samples: {p:#}"
        );
        eprintln!("{backend}: {}", p["shares_pct"]);
        if std::env::var_os("C1M_PERF_TEST_KEEP").is_none() {
            std::fs::remove_dir_all(&dir).expect("removing the case folder");
        }
    }
}
