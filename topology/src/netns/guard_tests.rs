//! Tests of the namespace guard (split out to keep guard.rs short).

use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("c1m-guard-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("record");
    f.write_all(text.as_bytes()).expect("write");
}

#[test]
fn exec_prefix_is_ip_netns_exec() {
    assert_eq!(
        exec_prefix("c1m-srv-abc123"),
        ["ip", "netns", "exec", "c1m-srv-abc123"]
    );
}

#[test]
fn missing_record_is_nothing_to_do() {
    let dir = temp_dir("missing");
    teardown_recorded(&dir.join("netns.record")).expect("no file, no work");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn record_with_foreign_names_deletes_nothing() {
    let dir = temp_dir("foreign");
    for (i, text) in [
        "c1m-srv-abc123\nsomebody-elses-ns\n",
        "c1m-srv-abc123\nc1m-cli0-zzz999\n",
        "c1m-srv-abc123\n../../etc\n",
        "c1m-srv-ABC123\n",
        "c1m-cli254-abc123\n",
    ]
    .iter()
    .enumerate()
    {
        let record = dir.join(format!("r{i}"));
        write(&record, text);
        let err = teardown_recorded(&record).expect_err(text);
        assert!(format!("{err:#}").contains("deleting nothing"), "{err:#}");
        assert!(record.exists(), "a refused record is kept");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn record_written_by_others_is_refused() {
    let dir = temp_dir("mode");
    let record = dir.join("r");
    write(&record, "c1m-srv-abc123\n");
    let mut perms = fs::metadata(&record).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o666);
    fs::set_permissions(&record, perms).expect("chmod");
    let err = teardown_recorded(&record).expect_err("world-writable record");
    assert!(format!("{err:#}").contains("not trusting"), "{err:#}");
    let link = dir.join("link");
    std::os::unix::fs::symlink(&record, &link).expect("symlink");
    assert!(
        teardown_recorded(&link).is_err(),
        "a symlink is not followed"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn record_of_gone_namespaces_is_removed() {
    let dir = temp_dir("gone");
    let record = dir.join("r");
    let suffix = super::super::random_suffix().expect("suffix");
    write(
        &record,
        &format!("{RECORD_HEADER}\nc1m-srv-{suffix}\nc1m-cli0-{suffix}\n"),
    );
    teardown_recorded(&record).expect("nothing left to delete");
    assert!(!record.exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_runs_namespace_and_record_are_removed_at_start() {
    let dir = temp_dir("stale");
    let suffix = super::super::random_suffix().expect("suffix");
    let ns = format!("c1m-srv-{suffix}");
    let record = record_path(&dir, 4_000_000);
    write(&record, &format!("{RECORD_HEADER}\n{ns}\n"));
    let foreign = record_path(&dir, 4_000_001);
    write(&foreign, "not-ours\n");
    write(&dir.join("netns-7.tmp"), "");
    write(&dir.join("other-file"), "kept");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let made = root && run_argv(&["ip", "netns", "add", &ns], None).is_ok();
    let said = clean_stale_records(&dir);
    if made {
        assert!(!namespace_exists(&ns), "the stale namespace is still there");
        assert!(
            said[0].contains(&format!("deleted network namespaces {ns}")),
            "{said:?}"
        );
    } else {
        eprintln!("not creating a namespace (needs root and ip): checking the records only");
    }
    assert!(!record.exists(), "{said:?}");
    assert!(said[1].contains("deleting nothing"), "{said:?}");
    assert!(foreign.exists(), "a record naming other namespaces is kept");
    assert!(!dir.join("netns-7.tmp").exists());
    assert!(dir.join("other-file").exists());
    assert_eq!(said.len(), 2, "{said:?}");
    let _ = run_argv(&["ip", "netns", "del", &ns], None);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn record_names() {
    assert!(is_record_name("netns-123.record") && is_record_name("netns-1.tmp"));
    for n in [
        "netns-.record",
        "netns-1a.record",
        "lock",
        "netns-1.record.x",
        "sysctl.saved",
    ] {
        assert!(!is_record_name(n), "{n}");
    }
}

#[test]
fn commands_run_with_input_and_report_failures() {
    let out = run_argv(&["cat"], Some("hello\n")).expect("cat");
    assert_eq!(out, "hello\n");
    let err = run_argv(&["sh", "-c", "echo oops >&2; exit 3"], None).expect_err("exit 3");
    assert!(format!("{err:#}").contains("oops"), "{err:#}");
}
