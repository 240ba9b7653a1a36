//! `--protocol` of the echo scenarios (pingpong, latency, hold, churn): what server and
//! loadgen speak in them. The http scenario always speaks http and takes its flags from here.

/// What the echo scenarios' servers and loadgens are told to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Raw echo, the pure I/O measure (the default; no flag is passed).
    Echo,
    /// Length-prefixed frames: `--size` is the payload, a request is 4 bytes more.
    Frame,
    /// HTTP/1.1 keep-alive with a `body`-byte answer; requests have their own length.
    Http { body: u64 },
}

impl Wire {
    /// `--protocol NAME` (with the run's `--body-size` for http).
    pub fn parse(name: &str, body: u64) -> Result<Wire, String> {
        match name {
            "echo" => Ok(Wire::Echo),
            "frame" => Ok(Wire::Frame),
            "http" => Ok(Wire::Http { body }),
            other => Err(format!("--protocol {other}: echo, frame or http")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Wire::Echo => "echo",
            Wire::Frame => "frame",
            Wire::Http { .. } => "http",
        }
    }

    /// Flags for c1m-server (and the Go server) and for c1m-loadgen alike: the same on
    /// both ends.
    pub fn args(self) -> Vec<String> {
        match self {
            Wire::Echo => Vec::new(),
            Wire::Frame => vec!["--protocol".into(), "frame".into()],
            Wire::Http { body } => vec![
                "--protocol".into(),
                "http".into(),
                "--body-size".into(),
                body.to_string(),
            ],
        }
    }

    /// The loadgen's `--size` for messages of `size` bytes: none for http.
    pub fn size(self, size: u64) -> Option<u64> {
        match self {
            Wire::Http { .. } => None,
            Wire::Echo | Wire::Frame => Some(size),
        }
    }

    /// The end of the scenario folder name: `-frame`, `-http`, nothing for echo (so echo
    /// folders keep the names they always had).
    pub fn folder_suffix(self) -> String {
        match self {
            Wire::Echo => String::new(),
            w => format!("-{}", w.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_passes_nothing_and_keeps_folder_names() {
        assert!(Wire::Echo.args().is_empty());
        assert_eq!(Wire::Echo.folder_suffix(), "");
        assert_eq!(Wire::Echo.size(64), Some(64));
    }

    #[test]
    fn frame_and_http_tell_both_ends() {
        assert_eq!(Wire::Frame.args(), ["--protocol", "frame"]);
        assert_eq!(Wire::Frame.size(64), Some(64));
        let http = Wire::parse("http", 16).expect("valid");
        assert_eq!(http.args(), ["--protocol", "http", "--body-size", "16"]);
        assert_eq!(http.size(64), None);
        assert_eq!(http.folder_suffix(), "-http");
        assert!(Wire::parse("smtp", 0).is_err());
    }
}
