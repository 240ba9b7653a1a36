//! `c1m-bench watchdog`: finishes a run's cleanup when the run died without doing its
//! own (SIGKILL, OOM kill). The run starts it in its own session (so a Ctrl-C does not
//! reach it), hands it the lock fd (so no other run starts before it is done) and stops
//! it at the end of a normal exit.

use crate::cli::WatchdogArgs;
use crate::procs::{pid_alive, stop_recorded};
use crate::statedir;
use crate::sysctl::Sysctl;
use crate::topology::netns::teardown_recorded;
use anyhow::Context as _;
use std::process::ExitCode;
use std::time::Duration;

/// The sysctl keys listed in a `tuned` file, one per line: dotted names only.
pub fn parse_keys(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .map(str::to_owned)
        .collect()
}

pub fn run(a: WatchdogArgs) -> anyhow::Result<ExitCode> {
    // a.lock_fd stays open (inherited) until this process exits: that holds the lock.
    let _ = a.lock_fd;
    while pid_alive(a.pid) {
        std::thread::sleep(Duration::from_millis(500));
    }
    if !a.run_dir.is_dir() {
        return Ok(ExitCode::SUCCESS); // the run cleaned up itself
    }
    statedir::check_dir(&a.run_dir, statedir::euid())
        .context("the watchdog trusts only the run's private folder")?;
    eprintln!(
        "c1m-watchdog: c1m-bench (pid {}) ended without cleaning up: stopping its processes, restoring sysctls",
        a.pid
    );
    if let Ok(text) = std::fs::read_to_string(a.run_dir.join("pgids")) {
        stop_recorded(&text, Duration::from_secs(3));
    }
    let mut ok = true;
    if let Some(record) = &a.netns_record {
        // SIGKILLed processes are gone once the kernel reaps them: give it a moment, so
        // that deleting a namespace also frees it.
        std::thread::sleep(Duration::from_millis(300));
        if let Err(e) = teardown_recorded(record) {
            eprintln!("c1m-watchdog: {e:#}");
            ok = false;
        }
    }
    let tuned = a.run_dir.join("tuned");
    if tuned.exists() {
        let s = Sysctl {
            scripts: a.scripts.clone(),
            state: a.state.clone(),
        };
        // `tuned` lists the keys the run applied (the run folder is private: checked
        // above); the restore refuses anything that is not a plain key.
        let mut keys = a.keys.clone();
        keys.extend(parse_keys(
            &std::fs::read_to_string(&tuned).unwrap_or_default(),
        ));
        ok &= s.restore(a.profile.as_deref(), &keys)?;
    }
    std::fs::remove_dir_all(&a.run_dir)
        .with_context(|| format!("cannot remove {}", a.run_dir.display()))?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn pgids_never_address_everyone() {
        assert_eq!(
            crate::procs::parse_pgids("123\n-1\n1\n0\nx\n 456 \n"),
            vec![123, 456]
        );
    }

    #[test]
    fn tuned_keys_are_plain_names() {
        assert_eq!(
            super::parse_keys("net.ipv4.tcp_mem\n\nfs.nr_open \n$(rm -rf /)\na/b\n"),
            vec!["net.ipv4.tcp_mem", "fs.nr_open"]
        );
    }
}
