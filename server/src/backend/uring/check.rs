//! Whether this kernel has what the io_uring backends need, with messages that say what to
//! change when it does not.

use anyhow::anyhow;
use io_uring::IoUring;
use std::io;

/// Explains why `io_uring_setup` failed, in terms of what to change.
fn explain_setup_error(e: io::Error) -> anyhow::Error {
    let disabled = c1m_platform::procfs::read_sysctl("kernel.io_uring_disabled");
    match e.raw_os_error() {
        Some(libc::ENOSYS) => anyhow!(
            "io_uring is not available (ENOSYS): kernel {} is older than 5.1 or built without \
             CONFIG_IO_URING; use --backend epoll or a newer kernel",
            c1m_platform::procfs::kernel_release()
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => match disabled.as_deref() {
            Some("2") => anyhow!(
                "io_uring is disabled by kernel.io_uring_disabled = 2: run \
                 `sysctl -w kernel.io_uring_disabled=0` as root, or use --backend epoll"
            ),
            Some("1") => anyhow!(
                "io_uring is limited to the group in kernel.io_uring_group \
                 (kernel.io_uring_disabled = 1): run as root, join that group, or set \
                 kernel.io_uring_disabled=0"
            ),
            _ => anyhow!(
                "io_uring_setup was refused ({e}), most likely by a seccomp filter (container \
                 runtimes block io_uring by default: e.g. docker run --security-opt \
                 seccomp=unconfined); use --backend epoll otherwise"
            ),
        },
        _ => anyhow!("io_uring_setup failed: {e}"),
    }
}

/// io_uring works at all (what tokio-uring needs).
pub fn check_io_uring_basic() -> anyhow::Result<()> {
    IoUring::new(2).map(drop).map_err(explain_setup_error)
}

/// Everything the uring backend uses is there: a ring with SINGLE_ISSUER|DEFER_TASKRUN
/// (6.1), a sparse fixed-file table, multishot accept (5.19) and multishot recv (6.0).
pub fn check_available() -> anyhow::Result<()> {
    check_io_uring_basic()?;
    let kernel = c1m_platform::procfs::kernel_release();
    let ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8)
        .map_err(|e| {
            anyhow!(
                "io_uring on kernel {kernel} lacks SINGLE_ISSUER/DEFER_TASKRUN ({e}): the uring \
                 backend needs Linux 6.1 or newer; use --backend epoll"
            )
        })?;
    ring.submitter().register_files_sparse(1).map_err(|e| {
        anyhow!("io_uring on kernel {kernel} cannot register a sparse file table ({e}): needs Linux 5.19+")
    })?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| anyhow!("io_uring probe failed on kernel {kernel}: {e}"))?;
    use io_uring::opcode;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::Close::CODE, "close"),
        (opcode::AsyncCancel::CODE, "async cancel"),
    ] {
        if !probe.is_supported(code) {
            return Err(anyhow!(
                "io_uring on kernel {kernel} does not support {name}: the uring backend needs Linux 6.1+"
            ));
        }
    }
    Ok(())
}
