//! ssh as data: every command the hosts topology runs on another machine is built here,
//! as an argv for the local `ssh` and one remote command line whose every word is
//! shell-quoted (ssh joins its remote words with spaces and hands them to the remote
//! user's shell, so an unquoted word would be split or expanded there).
//!
//! The user's own ssh config and keys apply; the kit adds only
//! `-o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3`
//! and the extra options of `--ssh-option` / `C1M_SSH_OPTIONS` (a port, an identity file).

/// The options every ssh of the kit gets: never ask for a password, give up on a dead
/// host after 10 s, notice a connection that died within about 15 s.
pub const BASE_OPTIONS: [&str; 8] = [
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
];

/// The environment variable with extra ssh options (split on blanks, like --ssh-option).
pub const OPTIONS_ENV: &str = "C1M_SSH_OPTIONS";

/// ssh's exit status when the connection failed or was lost (the remote command's own
/// status otherwise).
pub const SSH_FAILED: i32 = 255;

/// One word for a POSIX shell: as is when it is made of characters no shell treats
/// specially, else in single quotes (a `'` inside becomes `'\''`).
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:,=+-@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words as one quoted command line.
pub fn quote_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A host as given on the command line: `[user@]host`, checked so that it can never be
/// read as an ssh option or carry shell syntax.
pub fn check_host(h: &str) -> Result<(), String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let (user, host) = h.split_once('@').map_or((None, h), |(u, h)| (Some(u), h));
    if h.starts_with('-') || !ok_part(host) || user.is_some_and(|u| !ok_part(u)) {
        return Err(format!(
            "host '{h}': want [user@]host (letters, digits, . _ -; not starting with -)"
        ));
    }
    Ok(())
}

/// The host part of `[user@]host`.
pub fn host_part(h: &str) -> &str {
    h.rsplit_once('@').map_or(h, |(_, host)| host)
}

/// How the kit runs ssh.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ssh {
    /// Extra options, in order, after the kit's own.
    pub extra: Vec<String>,
}

impl Ssh {
    /// From `--ssh-option` values and `C1M_SSH_OPTIONS` (env first), each split on
    /// blanks: "-p 2222 -i ~/.ssh/lab" is four words.
    pub fn new(env: Option<&str>, given: &[String]) -> Ssh {
        let extra = env
            .into_iter()
            .chain(given.iter().map(String::as_str))
            .flat_map(str::split_whitespace)
            .map(str::to_owned)
            .collect();
        Ssh { extra }
    }

    /// `ssh OPTIONS -- HOST 'remote command line'`: `remote` is one shell command line
    /// (build it with [`quote_words`]).
    pub fn shell(&self, host: &str, remote: &str) -> Vec<String> {
        let mut argv = vec!["ssh".to_owned()];
        argv.extend(BASE_OPTIONS.iter().map(|s| (*s).to_owned()));
        argv.extend(self.extra.iter().cloned());
        argv.extend(["--".to_owned(), host.to_owned(), remote.to_owned()]);
        argv
    }

    /// `ssh ... HOST` running the words of `remote`, each quoted.
    pub fn words<S: AsRef<str>>(&self, host: &str, remote: &[S]) -> Vec<String> {
        self.shell(host, &quote_words(remote))
    }

    /// `ssh ... HOST 'cd DIR && exec WORDS'`: a program of the run's remote directory.
    pub fn in_dir<S: AsRef<str>>(&self, host: &str, dir: &str, remote: &[S]) -> Vec<String> {
        self.shell(
            host,
            &format!("cd {} && exec {}", quote(dir), quote_words(remote)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_any_posix_shell() {
        assert_eq!(quote("127.0.0.1:7000"), "127.0.0.1:7000");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote_words(&["x", "*", ";"]), "x '*' ';'");
        // What sh makes of them: the same words back.
        let words = [
            "plain",
            "two words",
            "it's",
            "$HOME",
            "`id`",
            "a;b|c&d",
            "*",
        ];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {}", quote_words(&words)))
            .output()
            .expect("sh runs");
        let back: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(back, words);
    }

    #[test]
    fn commands_carry_the_kit_options_then_the_users() {
        let ssh = Ssh::new(
            Some("-p 2222"),
            &["-i /k/id -o UserKnownHostsFile=/k/kh".into()],
        );
        let argv = ssh.words("root@198.18.0.1", &["cat", "/proc/net/sockstat"]);
        assert_eq!(
            argv,
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-p",
                "2222",
                "-i",
                "/k/id",
                "-o",
                "UserKnownHostsFile=/k/kh",
                "--",
                "root@198.18.0.1",
                "cat /proc/net/sockstat",
            ]
        );
        let d = Ssh::default().in_dir("h", "/tmp/c1m.x y", &["./c1m-server", "--version"]);
        assert_eq!(
            d.last().map(String::as_str),
            Some("cd '/tmp/c1m.x y' && exec ./c1m-server --version")
        );
    }

    #[test]
    fn hosts_are_checked() {
        for ok in ["root@198.18.0.1", "bench-1.lab", "u_1@h"] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in ["-oProxyCommand=x", "", "a b", "u@", "@h", "h;id", "u@h@g"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
        assert_eq!(host_part("root@198.18.0.1"), "198.18.0.1");
        assert_eq!(host_part("h"), "h");
    }
}
