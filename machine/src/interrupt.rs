//! SIGINT, SIGTERM and SIGHUP: the handler only records the signal; every wait in the
//! orchestrator polls [`check`], which turns it into an [`Interrupted`] error that
//! unwinds through the normal cleanup. Exit status 130, 143 or 129 afterwards.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

static CAUGHT: AtomicI32 = AtomicI32::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // The first signal wins; later ones are ignored while cleanup runs.
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// A run stopped by a signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by SIG{}", signal_name(*.0))]
pub struct Interrupted(pub i32);

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "INT",
        libc::SIGTERM => "TERM",
        libc::SIGHUP => "HUP",
        _ => "?",
    }
}

/// The exit status after cleanup: 128 + signal, as a shell reports it.
pub fn exit_status(sig: i32) -> u8 {
    u8::try_from(128 + sig).unwrap_or(1)
}

/// Installs the recording handler for SIGINT, SIGTERM and SIGHUP.
pub fn install() -> anyhow::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only does an atomic compare-exchange, which is
        // async-signal-safe; it touches no locks or allocations.
        unsafe { sigaction(sig, &act) }?;
    }
    Ok(())
}

/// The signal caught so far, if any.
pub fn caught() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `Err(Interrupted)` once a signal arrived (saying so once on stderr).
pub fn check() -> Result<(), Interrupted> {
    let Some(sig) = caught() else {
        return Ok(());
    };
    if !WARNED.swap(true, Ordering::SeqCst) {
        crate::warn(format!(
            "caught SIG{}: stopping runs, restoring the kernel",
            signal_name(sig)
        ));
    }
    Err(Interrupted(sig))
}

/// Sleeps, then [`check`]s.
pub fn sleep(d: Duration) -> Result<(), Interrupted> {
    check()?;
    std::thread::sleep(d);
    check()
}
