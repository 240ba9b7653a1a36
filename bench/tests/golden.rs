//! Golden tests: what the orchestrator prints and writes, pinned so a reshaping of
//! `bench/` can show it changed nothing (or exactly what it changed).
//!
//! - `dry_run_plans`: `c1m-bench run --dry-run --no-tune` for every topology (loopback,
//!   netns with 1 and 2 clients, hosts with addresses from 192.0.2.0/24, which the dry run
//!   never contacts) and several scenario/backend sets, one file per case under
//!   `tests/golden/dry-run/`, with the machine's facts masked (see [`mask`]).
//! - `reports_of_committed_results`: compare.md and the headline regenerated from the
//!   committed `results/` folders, as differences from the committed files in
//!   `tests/golden/reports.diff` (a file not listed there is identical).
//!
//! `C1M_UPDATE_GOLDEN=1 cargo test --release -p c1m-bench --test golden` rewrites the
//! golden files; review their diff before committing it.

use c1m_bench::headline::{headline_md, Head};
use c1m_bench::plan::Scenario;
use c1m_bench::report::scenario_md::{compare_table, failed_note, load_sorted, ok_runs};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UPDATE_ENV: &str = "C1M_UPDATE_GOLDEN";

fn updating() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `got` with the golden file `rel`, or rewrites it when updating. Returns a
/// description of the mismatch.
fn check_golden(rel: &str, got: &str) -> Option<String> {
    let path = golden_dir().join(rel);
    if updating() {
        fs::create_dir_all(path.parent().expect("a golden folder")).expect("golden folder");
        fs::write(&path, got).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return None;
    }
    let want = fs::read_to_string(&path).unwrap_or_default();
    if want == got {
        return None;
    }
    let diff = line_diff(&want, got);
    Some(format!("{rel} differs (- golden, + now):\n{diff}"))
}

fn assert_goldens(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{}\n{} golden file(s) differ. If the change is intended, rewrite them with \
         `{UPDATE_ENV}=1 cargo test --release -p c1m-bench --test golden` and review the diff.",
        failures.join("\n"),
        failures.len()
    );
}

/// The lines of `new` that are not in `old` (+) and those of `old` not in `new` (-), in
/// order, with the line number in `old` (a longest-common-subsequence diff; the files
/// here are small). Empty when equal.
fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "{:>4} + {}", i + 1, b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "{:>4} - {}", i + 1, a[i]);
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// (a) --dry-run

/// One dry run: its golden file's name, its arguments (after `run --dry-run --no-tune`)
/// and whether its hold size comes from this machine's MemAvailable (full scale without
/// `--conns`).
struct DryRun {
    name: &'static str,
    args: &'static [&'static str],
    memory_sized: bool,
}

const HOSTS: [&str; 6] = [
    "--topology",
    "hosts",
    "--server-host",
    "192.0.2.1",
    "--client-hosts",
    "u@192.0.2.2,192.0.2.3",
];

fn dry_runs() -> Vec<(DryRun, Vec<String>)> {
    let runs = [
        DryRun {
            name: "loopback-default",
            args: &[],
            memory_sized: true,
        },
        DryRun {
            name: "loopback-quick",
            args: &["--quick"],
            memory_sized: false,
        },
        DryRun {
            name: "loopback-conns-rounds",
            args: &[
                "--conns",
                "10000",
                "--rounds",
                "2",
                "--duration",
                "3",
                "--rate",
                "5000",
            ],
            memory_sized: false,
        },
        DryRun {
            name: "loopback-http-uring-go",
            args: &["--scenarios", "http", "--backends", "uring,go"],
            memory_sized: false,
        },
        DryRun {
            name: "loopback-http-nginx-quick",
            args: &[
                "--quick",
                "--scenarios",
                "http",
                "--backends",
                "nginx",
                "--body-size",
                "16",
            ],
            memory_sized: false,
        },
        DryRun {
            name: "loopback-frame-pingpong-hold",
            args: &["--protocol", "frame", "--scenarios", "pingpong,hold"],
            memory_sized: true,
        },
        DryRun {
            name: "loopback-http-protocol-quick",
            args: &["--quick", "--protocol", "http", "--backends", "epoll,go"],
            memory_sized: false,
        },
        DryRun {
            name: "netns-1-conns",
            args: &["--topology", "netns", "--conns", "10000"],
            memory_sized: false,
        },
        DryRun {
            name: "netns-1-quick",
            args: &["--topology", "netns", "--clients", "1", "--quick"],
            memory_sized: false,
        },
        DryRun {
            name: "netns-2-quick",
            args: &["--topology", "netns", "--clients", "2", "--quick"],
            memory_sized: false,
        },
        DryRun {
            name: "netns-2-frame-pingpong-hold-mtu",
            args: &[
                "--topology",
                "netns",
                "--clients",
                "2",
                "--protocol",
                "frame",
                "--scenarios",
                "pingpong,hold",
                "--conns",
                "40000",
                "--mtu",
                "1500",
                "--backends",
                "uring,epoll,go",
            ],
            memory_sized: false,
        },
        DryRun {
            name: "netns-2-http-quick",
            args: &[
                "--topology",
                "netns",
                "--clients",
                "2",
                "--quick",
                "--scenarios",
                "http",
                "--backends",
                "uring",
            ],
            memory_sized: false,
        },
        DryRun {
            name: "hosts-quick",
            args: &["--quick"],
            memory_sized: false,
        },
        DryRun {
            name: "hosts-http-quick",
            args: &["--quick", "--scenarios", "http", "--backends", "uring"],
            memory_sized: false,
        },
        DryRun {
            name: "hosts-sources-ssh-options",
            args: &[
                "--scenarios",
                "pingpong,hold",
                "--backends",
                "uring,epoll",
                "--conns",
                "10000",
                "--client-sources",
                "192.0.2.16-192.0.2.19",
                "--client-sources",
                "192.0.2.32,192.0.2.33",
                "--ssh-option",
                "-p 2222",
            ],
            memory_sized: false,
        },
    ];
    runs.into_iter()
        .map(|r| {
            let mut args: Vec<String> = ["run", "--dry-run", "--no-tune"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if r.name.starts_with("hosts") {
                args.extend(HOSTS.iter().map(|s| s.to_string()));
            }
            args.extend(r.args.iter().map(|s| s.to_string()));
            (r, args)
        })
        .collect()
}

/// A private copy of the repository's shape around a copy of c1m-bench, so the dry
/// run finds its root (scripts/, sysctl/) whatever target/release holds, and no results
/// folder of the checkout can shift its stamp. Removed on drop.
struct FakeRoot(PathBuf);

impl FakeRoot {
    fn new() -> FakeRoot {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("c1m-golden-{}-{nanos}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("a private temp folder");
        let root = FakeRoot(dir);
        let bin = root.0.join("target/release");
        fs::create_dir_all(&bin).expect("target/release");
        fs::copy(env!("CARGO_BIN_EXE_c1m-bench"), bin.join("c1m-bench")).expect("c1m-bench");
        // Only looked for (is_file) by a dry run.
        for b in ["c1m-server", "c1m-loadgen"] {
            fs::write(bin.join(b), "").expect("a stand-in binary");
        }
        // references/ is left out on purpose: the go backend's warning that its binary
        // is not built is then always printed.
        for d in ["scripts", "sysctl"] {
            std::os::unix::fs::symlink(repo().join(d), root.0.join(d)).expect("a link");
        }
        root
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs the copied c1m-bench with `args`, at most 60 s. Returns (exit status, stdout,
/// stderr).
fn run_bench(root: &FakeRoot, args: &[String]) -> (Option<i32>, String, String) {
    let (out, err) = (root.0.join("stdout"), root.0.join("stderr"));
    let mut child = Command::new(root.0.join("target/release/c1m-bench"))
        .args(args)
        .current_dir(&root.0)
        .env_remove("C1M_SSH_OPTIONS")
        .env_remove("C1M_STATE_DIR")
        .env_remove("C1M_INVOCATION")
        // The fd cap per process is RLIMIT_NOFILE's, which differs by machine and by
        // root; this is the figure of the reference machine (RLIMIT_NOFILE 20000).
        .env("C1M_CONNS_PER_PROC", "17769")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).expect("stdout file"))
        .stderr(fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("starting c1m-bench");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for c1m-bench") {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("c1m-bench {} ran past 60 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| fs::read_to_string(p).expect("reading c1m-bench's output");
    (status, read(&out), read(&err))
}

/// The short host name, as c1m-bench names folders.
fn short_host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .split('.')
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

/// Replaces the 6-character suffix after each `marker` (namespace names, hosts' tokens)
/// with `XXXXXX`.
fn mask_suffix(line: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(marker) {
        let (head, tail) = rest.split_at(i + marker.len());
        out.push_str(head);
        let n = tail
            .bytes()
            .take(6)
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
        if n == 6 {
            out.push_str("XXXXXX");
            rest = &tail[6..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Replaces what follows `marker` up to `end` (or the line's end) with `with`.
fn mask_after(line: &str, marker: &str, end: char, with: &str) -> String {
    let Some(i) = line.find(marker) else {
        return line.to_owned();
    };
    let start = i + marker.len();
    let stop = line[start..].find(end).map_or(line.len(), |j| start + j);
    format!("{}{with}{}", &line[..start], &line[stop..])
}

/// The dry run's output with what depends on this machine masked or dropped:
/// - dropped: the preflight block (kernel, root, rlimits, CPUs, memory, load), the
///   `ulimit -n now` line, the warnings "one CPU" and "the http scenario needs nginx,
///   wrk" (installed or not);
/// - masked: the stamp and host of the results line, the random suffix of namespace
///   names and of the hosts' tokens, every CPU list (`CPUs <CPUS>`), the fake root's
///   path, `RLIMIT_NOFILE <N>` (the limit differs by machine; the connections per
///   process are fixed by C1M_CONNS_PER_PROC);
/// - on loopback, dropped: "loadgen source addresses for one server port" (it follows
///   this machine's net.ipv4.ip_local_port_range, read untuned);
/// - when `memory_sized`: the hold line and the estimated time (MemAvailable sizes the
///   hold).
fn mask(text: &str, root: &Path, memory_sized: bool) -> String {
    let host = short_host();
    let root = root.display().to_string();
    let mut out = String::new();
    let mut in_preflight = false;
    let mut loopback = false;
    for line in text.lines() {
        if line == "preflight:" {
            in_preflight = true;
            continue;
        }
        if in_preflight && line.starts_with("  ") {
            continue;
        }
        in_preflight = false;
        if line.starts_with("c1m: ulimit -n now ")
            || line.starts_with("c1m: warning: one CPU:")
            || line.starts_with("c1m: warning: the http scenario needs")
        {
            continue;
        }
        if line.starts_with("plan (") {
            loopback = !text.contains("\ntopology (netns)") && !text.contains("\ntopology (hosts)");
        }
        if loopback && line.contains("loadgen source addresses for one server port:") {
            continue;
        }
        let mut l = line.replace(&root, "<ROOT>");
        if l.starts_with("  CPUs              server ") {
            l = mask_after(&l, "server ", ',', "<CPUS>");
            l = mask_after(&l, "loadgen ", ' ', "<CPUS>");
            l = mask_after(&l, "(of ", ' ', "<N>");
        }
        if l.contains(", CPUs ") {
            l = mask_after(&l, ", CPUs ", ',', "<CPUS>");
        }
        l = mask_after(&l, "(RLIMIT_NOFILE ", ':', "<N>");
        if l.starts_with("  results           ") {
            if let (Some(a), Some(b)) = (l.find("results/"), l.find("-{")) {
                let stamp_host = &l[a + "results/".len()..b];
                if stamp_host.ends_with(&format!("-{host}")) {
                    l = format!("{}<STAMP>-<HOST>{}", &l[..a + "results/".len()], &l[b..]);
                }
            }
        }
        for marker in ["c1m-srv-", "c1m-br-", "hosts-"] {
            l = mask_suffix(&l, marker);
        }
        for i in 0..8 {
            l = mask_suffix(&l, &format!("c1m-cli{i}-"));
        }
        if memory_sized && l.starts_with("  hold              ") {
            l = "  hold              <sized by MemAvailable>".into();
        }
        if memory_sized && l.starts_with("  estimated time    ") {
            l = "  estimated time    <depends on the hold size>".into();
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn dry_run_plans() {
    let root = FakeRoot::new();
    let mut failures = Vec::new();
    for (case, args) in dry_runs() {
        let (status, stdout, stderr) = run_bench(&root, &args);
        let mut got = format!("$ c1m-bench {}\nexit status: {status:?}\n", args.join(" "));
        got.push_str(&mask(&stderr, &root.0, case.memory_sized));
        if !stdout.is_empty() {
            got.push_str("--- stdout\n");
            got.push_str(&mask(&stdout, &root.0, case.memory_sized));
        }
        failures.extend(check_golden(&format!("dry-run/{}.txt", case.name), &got));
    }
    assert_goldens(&failures);
}

// ---------------------------------------------------------------------------------
// (b) reports regenerated from the committed results/

fn base(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The scenario of `<stamp>-<host>-<scenario>[-frame|-http]`, if it is one.
fn scenario_of(name: &str) -> Option<Scenario> {
    let find = |w: &str| Scenario::ALL.into_iter().find(|s| s.name() == w);
    let mut words = name.rsplit('-');
    let last = words.next()?;
    if last == "frame" || last == "http" {
        if let Some(s) = words.next().and_then(find).filter(|s| s.is_echo()) {
            return Some(s);
        }
    }
    find(last)
}

/// The committed scenario folders that c1m-bench wrote (run.md and compare.md), by name.
fn scenario_dirs(results: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(results)
        .expect("results/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("run.md").is_file() && p.join("compare.md").is_file())
        .filter(|p| scenario_of(&base(p)).is_some())
        .collect();
    dirs.sort();
    dirs
}

/// Replaces, in `md` from byte `from` on, the text from the first line that starts with
/// one of `starts` up to (not including) `end`, with `new`. Returns where the replaced
/// part ends in the new text, or None (unchanged) when it is not there.
fn replace_block(
    md: &mut String,
    from: usize,
    starts: &[&str],
    end: &str,
    new: &str,
) -> Option<usize> {
    let mut at = from;
    let begin = loop {
        let line_end = md[at..].find('\n').map_or(md.len(), |i| at + i + 1);
        if starts.iter().any(|s| md[at..].starts_with(s)) {
            break at;
        }
        if line_end >= md.len() {
            return None;
        }
        at = line_end;
    };
    let stop = begin + md[begin..].find(end)?;
    md.replace_range(begin..stop, new);
    Some(begin + new.len())
}

/// The start of `c1m-loadgen compare`'s markdown (plain or rounds table).
const COMPARE_STARTS: [&str; 2] = ["Ratios (×)", "Each cell:"];

/// compare.md of a committed echo scenario folder with every part that is a function of
/// its run folders regenerated: each point's `c1m-loadgen compare` table and notes, the
/// hold and churn tables. Headings, notes on processes and rates stay as committed (they
/// come from the run's options and machine, not from its folders). Returns it, how many
/// parts were regenerated and how many there should have been (one per table of runs).
fn regenerate_echo_compare(
    sdir: &Path,
    scenario: Scenario,
    committed: &str,
) -> (String, usize, usize) {
    let mut md = committed.to_owned();
    let (mut parts, mut expected) = (0, 0);
    let table = |dirs: &[PathBuf]| -> String {
        let runs = load_sorted(dirs).expect("loading the runs");
        // The committed table ends with a newline before the blank line and the plot.
        let mut t = compare_table(sdir, &runs);
        if !t.ends_with('\n') {
            t.push('\n');
        }
        t
    };
    match scenario {
        Scenario::Hold | Scenario::Churn => {
            let dirs = ok_runs(sdir, None);
            if dirs.is_empty() {
                return (md, parts, expected);
            }
            expected = 2;
            let (heading, next, section) = if scenario == Scenario::Hold {
                (
                    "## Holding\n\n",
                    "\n## Heartbeat latency",
                    c1m_bench::report::section_hold(&dirs),
                )
            } else {
                (
                    "## Connections\n\n",
                    "\n## Exchange latency",
                    c1m_bench::report::section_churn(&dirs),
                )
            };
            let mut at = 0;
            if let Some(h) = md.find(heading) {
                let from = h + heading.len();
                let stop = from + md[from..].find(next).unwrap_or(md.len() - from);
                md.replace_range(from..stop, &section);
                at = from + section.len();
                parts += 1;
            }
            if replace_block(
                &mut md,
                at,
                &COMPARE_STARTS,
                "\n![latency percentiles]",
                &table(&dirs),
            )
            .is_some()
            {
                parts += 1;
            }
        }
        Scenario::Pingpong | Scenario::Latency => {
            // Folders from before the points had sections: one table of every run.
            let dirs = ok_runs(sdir, None);
            if !md.contains("\n## ") && !dirs.is_empty() {
                expected += 1;
                let new = table(&dirs);
                let end = "\n![latency percentiles]";
                if replace_block(&mut md, 0, &COMPARE_STARTS, end, &new).is_some() {
                    parts += 1;
                }
            }
            let mut at = 0;
            while let Some(h) = md[at..].find("\n## ").map(|i| at + i + 1) {
                let line_end = md[h..].find('\n').map_or(md.len(), |i| h + i);
                let heading = md[h..line_end].to_owned();
                let suffix = if scenario == Scenario::Pingpong {
                    // "## 100 connections"
                    heading.split_whitespace().nth(1).map(|c| format!("-c{c}"))
                } else {
                    // "## 1000 connections at 35366 msgs/s (c1000-r25)"
                    heading
                        .rsplit_once('(')
                        .map(|(_, p)| format!("-{}", p.trim_end_matches(')')))
                };
                at = line_end;
                let Some(suffix) = suffix else { continue };
                let dirs = ok_runs(sdir, Some(&suffix));
                if dirs.is_empty() {
                    continue;
                }
                expected += 1;
                let section_end = md[at..].find("\n## ").map_or(md.len(), |i| at + i);
                let mut section = md[at..section_end].to_owned();
                if replace_block(
                    &mut section,
                    0,
                    &COMPARE_STARTS,
                    "\n![latency percentiles]",
                    &table(&dirs),
                )
                .is_some()
                {
                    md.replace_range(at..section_end, &section);
                    at += section.len();
                    parts += 1;
                }
            }
        }
        Scenario::Http => unreachable!("not an echo scenario"),
    }
    (md, parts, expected)
}

/// compare.md of a committed http folder: up to its first `## ` section as committed
/// (heading, servers, CPUs), the failures and the rest regenerated.
fn regenerate_http_compare(sdir: &Path, committed: &str) -> String {
    let cut = committed
        .find("\n## ")
        .or_else(|| committed.find("\nNo run produced results."))
        .map_or(committed.len(), |i| i + 1);
    // failed_note ends the committed part (it adds one blank line).
    let head = &committed[..cut];
    let note = failed_note(sdir);
    let head = head.strip_suffix(note.as_str()).unwrap_or(head);
    format!("{head}{note}{}", c1m_bench::http::compare_body(sdir))
}

/// The facts of a committed headline's first lines: `# c1m headline: STAMP on HOST
/// (quick|full)` and `git REV[ (dirty)]; server CPU S, loadgen CPU L; SETTING. COST
/// Details: ...`. The cost note is regenerated (from the scenarios), not parsed.
fn parse_head(md: &str, scenarios: Vec<Scenario>) -> Option<Head> {
    let mut lines = md.lines();
    let title = lines.next()?.strip_prefix("# c1m headline: ")?;
    let (stamp, rest) = title.split_once(" on ")?;
    let (host, scale) = rest.split_once(" (")?;
    let git = lines
        .find(|l| l.starts_with("git "))?
        .strip_prefix("git ")?;
    let (revision, rest) = git.split_once("; server CPU ")?;
    let (server, rest) = rest.split_once(", loadgen CPU ")?;
    let (loadgen, rest) = rest.split_once("; ")?;
    let cost = [". srv CPU µs/msg", ". http (HTTP/1.1"]
        .iter()
        .filter_map(|c| rest.find(c))
        .min()?;
    Some(Head {
        stamp: stamp.to_owned(),
        host: host.to_owned(),
        quick: scale.starts_with("quick"),
        revision: revision.to_owned(),
        server_cpus: server.to_owned(),
        loadgen_cpus: loadgen.to_owned(),
        setting: rest[..cost].to_owned(),
        scenarios,
        arrivals: rest
            .split_once(" Equal-load points: ")
            .and_then(|(_, a)| a.split_once(". Details: "))
            .map(|(a, _)| a.to_owned()),
    })
}

/// A committed headline regenerated: its scenario folders (`STAMP-HOST-*`, in scenario
/// order), the failures their FAILED files name, the head facts from its first lines.
fn regenerate_headline(committed: &str, all: &[PathBuf]) -> Option<String> {
    let title = committed.lines().next()?.strip_prefix("# c1m headline: ")?;
    let (stamp, rest) = title.split_once(" on ")?;
    let host = rest.split_once(" (")?.0;
    let prefix = format!("{stamp}-{host}-");
    let mut sdirs: Vec<(usize, PathBuf)> = all
        .iter()
        .filter_map(|d| {
            let name = base(d);
            let rest = name.strip_prefix(&prefix)?;
            // `STAMP-2-HOST-...` belongs to another run; `rest` is the scenario.
            let s = scenario_of(&name).filter(|s| rest.starts_with(s.name()))?;
            Some((Scenario::ALL.iter().position(|&x| x == s)?, d.clone()))
        })
        .collect();
    sdirs.sort();
    let scenarios: Vec<Scenario> = sdirs.iter().map(|(i, _)| Scenario::ALL[*i]).collect();
    let sdirs: Vec<PathBuf> = sdirs.into_iter().map(|(_, d)| d).collect();
    let mut failures = Vec::new();
    for d in &sdirs {
        for r in c1m_bench::report::run_dirs(d) {
            if let Ok(why) = fs::read_to_string(r.join("FAILED")) {
                let name = r.strip_prefix(d).unwrap_or(&r).display().to_string();
                failures.push(format!("{name} ({}): {}", base(d), why.trim_end()));
            }
        }
    }
    let head = parse_head(committed, scenarios)?;
    Some(headline_md(&head, &sdirs, &failures))
}

#[test]
fn reports_of_committed_results() {
    let root = repo();
    let results = root.join("results");
    let all = scenario_dirs(&results);
    assert!(
        !all.is_empty(),
        "no committed scenario folder in {}",
        results.display()
    );
    // Only the files that differ are listed, so a run committed later by the same code
    // leaves this golden as it is.
    let mut report = String::from(
        "# Reports regenerated from the committed results/, against the committed files\n\
         # (`- ` committed line, `+ ` regenerated line, numbered as committed; a file not listed is identical)\n",
    );
    let mut failures = Vec::new();
    for sdir in &all {
        let name = base(sdir);
        let committed = fs::read_to_string(sdir.join("compare.md")).expect("compare.md");
        let (regenerated, parts, expected) = match scenario_of(&name) {
            Some(Scenario::Http) => (regenerate_http_compare(sdir, &committed), 1, 1),
            Some(s) => regenerate_echo_compare(sdir, s, &committed),
            None => continue,
        };
        // Every table of runs must be found: one missed means the layout of compare.md
        // changed and this test would silently compare less.
        if parts < expected {
            failures.push(format!(
                "results/{name}/compare.md: {parts} of {expected} tables regenerated; follow its new layout in regenerate_echo_compare"
            ));
        }
        let diff = line_diff(&committed, &regenerated);
        if !diff.is_empty() {
            let _ = writeln!(report, "\n## results/{name}/compare.md");
            report.push_str(&diff);
        }
    }
    let mut headlines: Vec<PathBuf> = fs::read_dir(&results)
        .expect("results/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| base(p).ends_with("-headline.md"))
        .collect();
    headlines.sort();
    for h in headlines {
        let committed = fs::read_to_string(&h).expect("a headline");
        let diff = match regenerate_headline(&committed, &all) {
            Some(regenerated) => line_diff(&committed, &regenerated),
            None => "(its first lines cannot be parsed)\n".into(),
        };
        if !diff.is_empty() {
            let _ = writeln!(report, "\n## results/{}", base(&h));
            report.push_str(&diff);
        }
    }
    failures.extend(check_golden("reports.diff", &report));
    assert_goldens(&failures);
}
