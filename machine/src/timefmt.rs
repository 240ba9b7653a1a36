//! Wall-clock stamps: `2026-11-21-0710` (local time, folder names) and
//! `2026-11-21T07:10:00Z` (UTC, run.md).

fn broken_down(utc: bool) -> Option<libc::tm> {
    // SAFETY: time(NULL) only returns the current time.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: all-zero is a valid `tm` (plain integers and a nullable pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; the _r variants are thread-safe and
    // write only into `tm`.
    let ok = unsafe {
        if utc {
            !libc::gmtime_r(&now, &mut tm).is_null()
        } else {
            !libc::localtime_r(&now, &mut tm).is_null()
        }
    };
    ok.then_some(tm)
}

/// `date +%Y-%m-%d-%H%M`.
pub fn local_stamp() -> String {
    match broken_down(false) {
        Some(t) => format!(
            "{:04}-{:02}-{:02}-{:02}{:02}",
            t.tm_year + 1900,
            t.tm_mon + 1,
            t.tm_mday,
            t.tm_hour,
            t.tm_min
        ),
        None => "unknown-time".into(),
    }
}

/// `date -u +%FT%TZ`.
pub fn utc_iso() -> String {
    match broken_down(true) {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.tm_year + 1900,
            t.tm_mon + 1,
            t.tm_mday,
            t.tm_hour,
            t.tm_min,
            t.tm_sec
        ),
        None => "unknown-time".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        let s = super::local_stamp();
        assert_eq!(s.len(), "2026-11-21-0710".len(), "{s}");
        let u = super::utc_iso();
        assert!(u.ends_with('Z') && u.contains('T'), "{u}");
    }
}
