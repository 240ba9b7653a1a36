//! nginx, the outside reference server of the http scenario: its nginx.conf as data
//! ([`render`], a pure function), the private folder it runs in, and its command line.
//!
//! Everything nginx writes lives in one private folder per case (mode 0700, made with
//! `mkdtemp` inside the run's own private folder): the pid file, the error log and
//! every `*_temp_path`. It starts in the foreground (`daemon off`) as the leader of a
//! process group of its own (so the kit stops its workers with it, on every exit path,
//! like every other server), with `master_process on`, one worker per server CPU, each
//! pinned (`worker_cpu_affinity`), and the master pinned to the server CPUs too
//! (`taskset`).

use anyhow::{bail, Context as _};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What nginx.conf says.
#[derive(Debug, Clone)]
pub struct NginxConf<'a> {
    /// The private folder: pid file, error log, temp paths.
    pub dir: &'a Path,
    /// `127.0.0.1:PORT`.
    pub listen: &'a str,
    /// The server CPUs: one worker on each.
    pub cpus: &'a [usize],
    pub worker_connections: u64,
    pub rlimit_nofile: u64,
    /// The response body (the contract's pattern: characters that need no escaping).
    pub body: &'a str,
    /// The `*_temp_path` directives this nginx has (see [`temp_path_directives`]).
    pub temp_paths: &'a [&'static str],
}

/// Every `*_temp_path` directive and the module that brings it (`None`: the core).
const TEMP_PATHS: [(&str, Option<&str>); 5] = [
    ("client_body_temp_path", None),
    ("proxy_temp_path", Some("http_proxy")),
    ("fastcgi_temp_path", Some("http_fastcgi")),
    ("uwsgi_temp_path", Some("http_uwsgi")),
    ("scgi_temp_path", Some("http_scgi")),
];

/// The `*_temp_path` directives of the nginx whose `nginx -V` printed `v`: all of them
/// but those of modules built `--without-<module>_module` (an unknown directive would
/// stop nginx). nginx creates each temp path at start-up, so every one it has is moved
/// into the private folder.
pub fn temp_path_directives(v: &str) -> Vec<&'static str> {
    TEMP_PATHS
        .iter()
        .filter(|(_, module)| module.is_none_or(|m| !v.contains(&format!("--without-{m}_module"))))
        .map(|(d, _)| *d)
        .collect()
}

/// `worker_cpu_affinity` masks: one binary mask per CPU, CPU 0 rightmost.
pub fn cpu_masks(cpus: &[usize]) -> String {
    let width = cpus.iter().max().map_or(1, |m| m + 1);
    cpus.iter()
        .map(|&c| {
            (0..width)
                .rev()
                .map(|bit| if bit == c { '1' } else { '0' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `worker_connections` and `worker_rlimit_nofile` for `conns` benchmark connections
/// spread over `workers` workers by `SO_REUSEPORT` (by hash, so a worker may get more
/// than its share: every worker can take all of them), within the hard `RLIMIT_NOFILE`
/// `hard` this process has (nginx cannot raise it further).
pub fn sizing(conns: u64, hard: u64) -> (u64, u64) {
    let worker_connections = conns + 1024;
    let nofile = (worker_connections * 2 + 64).min(hard);
    (
        worker_connections.min(nofile.saturating_sub(64).max(64)),
        nofile,
    )
}

/// A path as an nginx.conf string, or an error for characters nginx.conf would read
/// otherwise (quotes, escapes, variables, control characters).
fn quoted(p: &Path) -> anyhow::Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))?;
    if s.chars()
        .any(|c| matches!(c, '"' | '\\' | '$' | '\'') || c.is_control())
    {
        bail!(
            "{s}: a path nginx.conf cannot hold as it is (quote, backslash, $ or a control \
             character); set TMPDIR to a plain folder"
        );
    }
    Ok(format!("\"{s}\""))
}

/// The nginx.conf of the http scenario.
pub fn render(c: &NginxConf) -> anyhow::Result<String> {
    if !c.body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("the response body must be letters and digits (the contract's pattern)");
    }
    let q = |name: &str| quoted(&c.dir.join(name));
    let mut t = String::new();
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(t, "# Written by c1m-bench for the http scenario; nginx runs with -p {}/ -c nginx.conf -e error.log.", c.dir.display());
    t.push_str("daemon off;\nmaster_process on;\n");
    let _ = writeln!(t, "worker_processes {};", c.cpus.len().max(1));
    if !c.cpus.is_empty() {
        let _ = writeln!(t, "worker_cpu_affinity {};", cpu_masks(c.cpus));
    }
    let _ = writeln!(t, "worker_rlimit_nofile {};", c.rlimit_nofile);
    let _ = writeln!(t, "pid {};", q("nginx.pid")?);
    let _ = writeln!(t, "error_log {} warn;\n", q("error.log")?);
    let _ = writeln!(
        t,
        "events {{\n    worker_connections {};\n    use epoll;\n}}\n",
        c.worker_connections
    );
    t.push_str("http {\n    access_log off;\n");
    for d in c.temp_paths {
        let _ = writeln!(t, "    {d} {};", q(d.trim_end_matches("_path"))?);
    }
    // Never close a benchmark connection: ~1e9 requests or an hour idle per connection.
    t.push_str("    keepalive_requests 1000000000;\n    keepalive_timeout 3600s;\n\n");
    let _ = writeln!(
        t,
        "    server {{\n        listen {} reuseport backlog=65535;\n        location / {{\n            default_type text/plain;\n            return 200 \"{}\";\n        }}\n    }}\n}}",
        c.listen, c.body
    );
    Ok(t)
}

/// A fresh private folder for one nginx: `mkdtemp` (mode 0700, a name nobody could
/// have prepared) inside `parent`, which must be the run's own private folder.
pub fn private_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = nix::unistd::mkdtemp(&parent.join("nginx.XXXXXX"))
        .with_context(|| format!("cannot create a private folder in {}", parent.display()))?;
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.permissions().mode() & 0o077 != 0 {
        bail!("{} is not a private folder (mode 0700)", dir.display());
    }
    Ok(dir)
}

/// `nginx -V`'s text (it prints to stderr), for [`temp_path_directives`].
pub fn version_text(nginx: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(nginx)
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} -V", nginx.display()))?;
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Ok(text)
}

/// The command line: pinned to the server CPUs, everything in `dir`.
pub fn argv(taskset: &Path, nginx: &Path, cpus: &str, dir: &Path) -> Vec<String> {
    let d = dir.display();
    vec![
        taskset.display().to_string(),
        "-c".into(),
        cpus.into(),
        nginx.display().to_string(),
        "-p".into(),
        format!("{d}/"),
        "-c".into(),
        format!("{d}/nginx.conf"),
        "-e".into(),
        format!("{d}/error.log"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_V: &str = "nginx version: nginx/1.22.1\nconfigure arguments: --with-cc-opt='-g' --prefix=/usr/share/nginx --error-log-path=stderr --http-client-body-temp-path=/var/lib/nginx/body --http-fastcgi-temp-path=/var/lib/nginx/fastcgi --http-proxy-temp-path=/var/lib/nginx/proxy --http-scgi-temp-path=/var/lib/nginx/scgi --http-uwsgi-temp-path=/var/lib/nginx/uwsgi --with-http_ssl_module";

    #[test]
    fn temp_paths_of_the_modules_built_in() {
        assert_eq!(temp_path_directives(DEBIAN_V).len(), 5);
        let light = "configure arguments: --without-http_uwsgi_module --without-http_scgi_module";
        assert_eq!(
            temp_path_directives(light),
            [
                "client_body_temp_path",
                "proxy_temp_path",
                "fastcgi_temp_path"
            ]
        );
    }

    #[test]
    fn cpu_masks_and_sizing() {
        assert_eq!(cpu_masks(&[0]), "1");
        assert_eq!(cpu_masks(&[0, 1]), "01 10");
        assert_eq!(cpu_masks(&[2, 3]), "0100 1000");
        assert_eq!(sizing(1000, 20_000), (2024, 4112));
        // The hard limit caps both.
        assert_eq!(sizing(100_000, 20_000), (19_936, 20_000));
    }

    #[test]
    fn the_rendered_nginx_conf() {
        let dir = Path::new("/tmp/c1m.AbC123/nginx.XyZ789");
        let body = "0123456789abcdef".to_string();
        let conf = NginxConf {
            dir,
            listen: "127.0.0.1:7001",
            cpus: &[0],
            worker_connections: 2024,
            rlimit_nofile: 4112,
            body: &body,
            temp_paths: &temp_path_directives(DEBIAN_V),
        };
        let t = render(&conf).unwrap();
        let d = "/tmp/c1m.AbC123/nginx.XyZ789";
        for want in [
            "daemon off;\nmaster_process on;\nworker_processes 1;\nworker_cpu_affinity 1;\nworker_rlimit_nofile 4112;\n".to_string(),
            format!("pid \"{d}/nginx.pid\";\nerror_log \"{d}/error.log\" warn;\n"),
            "events {\n    worker_connections 2024;\n    use epoll;\n}\n".into(),
            "http {\n    access_log off;\n".into(),
            format!("    client_body_temp_path \"{d}/client_body_temp\";\n"),
            format!("    proxy_temp_path \"{d}/proxy_temp\";\n"),
            format!("    fastcgi_temp_path \"{d}/fastcgi_temp\";\n"),
            format!("    uwsgi_temp_path \"{d}/uwsgi_temp\";\n"),
            format!("    scgi_temp_path \"{d}/scgi_temp\";\n"),
            "    keepalive_requests 1000000000;\n    keepalive_timeout 3600s;\n".into(),
            "        listen 127.0.0.1:7001 reuseport backlog=65535;\n".into(),
            "        location / {\n            default_type text/plain;\n            return 200 \"0123456789abcdef\";\n        }\n".into(),
        ] {
            assert!(t.contains(&want), "missing {want:?} in\n{t}");
        }
        assert!(t.ends_with("    }\n}\n"), "{t}");
        // Every path nginx writes is in the private folder.
        for l in t.lines().filter(|l| l.contains("\"/")) {
            assert!(l.contains(d), "{l}");
        }
        // Two CPUs: two workers, one per CPU.
        let two = render(&NginxConf {
            cpus: &[0, 1],
            ..conf.clone()
        })
        .unwrap();
        assert!(two.contains("worker_processes 2;\nworker_cpu_affinity 01 10;\n"));
        let bad = render(&NginxConf {
            dir: Path::new("/tmp/a\"b"),
            ..conf.clone()
        });
        assert!(bad.unwrap_err().to_string().contains("TMPDIR"));
        let bad = render(&NginxConf {
            body: "a\";",
            ..conf
        });
        assert!(bad.is_err());
    }

    #[test]
    fn private_folders_and_the_command_line() {
        use std::os::unix::fs::PermissionsExt as _;
        let t = c1m_machine::tempdir::TempDir::new();
        let d = private_dir(&t.0).unwrap();
        assert!(d.starts_with(&t.0));
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_ne!(private_dir(&t.0).unwrap(), d, "a fresh name every time");
        let a = argv(
            Path::new("/usr/bin/taskset"),
            Path::new("/usr/sbin/nginx"),
            "0",
            Path::new("/t/n"),
        );
        assert_eq!(
            a.join(" "),
            "/usr/bin/taskset -c 0 /usr/sbin/nginx -p /t/n/ -c /t/n/nginx.conf -e /t/n/error.log"
        );
    }
}
