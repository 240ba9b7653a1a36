//! Where the server's CPU went: each sample of a folded profile (`a;b;c COUNT`, root
//! first, kernel frames marked `_[k]` as inferno's `annotate_kernel` writes them) in one
//! category. The rule: softirq when any frame is softirq processing; else the first
//! category a kernel frame matches, scanning from the leaf up; else user when the leaf
//! is a user frame; else other kernel. Every sample lands in exactly one category, so
//! the shares sum to 100%.

use serde_json::{json, Map, Value};

/// Where a sample's CPU went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    User,
    Syscall,
    TcpIp,
    IoUring,
    Epoll,
    Sched,
    Softirq,
    OtherKernel,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::User,
        Category::Syscall,
        Category::TcpIp,
        Category::IoUring,
        Category::Epoll,
        Category::Sched,
        Category::Softirq,
        Category::OtherKernel,
    ];

    /// The key in profile.json.
    pub fn key(self) -> &'static str {
        match self {
            Category::User => "user",
            Category::Syscall => "syscall",
            Category::TcpIp => "tcp_ip",
            Category::IoUring => "io_uring",
            Category::Epoll => "epoll",
            Category::Sched => "sched",
            Category::Softirq => "softirq",
            Category::OtherKernel => "other_kernel",
        }
    }

    /// The column of compare.md's table.
    pub fn title(self) -> &'static str {
        match self {
            Category::TcpIp => "tcp/ip",
            Category::OtherKernel => "other kernel",
            c => c.key(),
        }
    }
}

/// The frame's function without the `_[k]` mark; whether it was a kernel frame.
fn kernel_name(frame: &str) -> Option<&str> {
    frame.strip_suffix("_[k]")
}

/// Softirq processing: the frames that run the pending softirqs (on loopback and veth
/// the receive side of every packet runs there, inside the sender's system call).
fn is_softirq(name: &str) -> bool {
    matches!(
        name,
        "__do_softirq"
            | "handle_softirqs"
            | "net_rx_action"
            | "do_softirq"
            | "do_softirq_own_stack"
    )
}

const SCHED: &[&str] = &[
    "schedule",
    "__schedule",
    "finish_task_switch",
    "pick_next_",
    "__pick_next_",
    "dequeue_",
    "enqueue_",
    "try_to_wake_up",
    "ttwu_",
    "__switch_to",
    "context_switch",
    "update_curr",
    "update_load_avg",
    "psi_",
    "put_prev_",
    "set_next_",
    "select_task_rq",
    "io_schedule",
    "__wake_up",
    "wake_up_",
];
const TCP_IP: &[&str] = &[
    "tcp_",
    "__tcp_",
    "inet_",
    "__inet_",
    "ip_",
    "__ip_",
    "ipv4_",
    "sk_",
    "__sk_",
    "sock_",
    "__sock_",
    "skb_",
    "__skb_",
    "kfree_skb",
    "__kfree_skb",
    "alloc_skb",
    "__alloc_skb",
    "release_sock",
    "lock_sock",
    "__sys_sendto",
    "__sys_recvfrom",
    "__sys_sendmsg",
    "__sys_recvmsg",
    "__sys_accept",
    "__sys_connect",
    "dev_",
    "__dev_",
    "netif_",
    "__netif_",
    "napi_",
    "__napi_",
    "loopback_",
    "veth_",
    "neigh_",
    "nf_",
    "process_backlog",
    "security_sock",
];
const IO_URING: &[&str] = &["io_", "__io_", "__do_sys_io_uring", "__x64_sys_io_uring"];
const EPOLL: &[&str] = &[
    "ep_",
    "do_epoll_",
    "__do_sys_epoll",
    "__x64_sys_epoll",
    "epoll_",
];
const SYSCALL: &[&str] = &[
    "entry_SYSCALL",
    "do_syscall_64",
    "x64_sys_call",
    "syscall_enter_from_user_mode",
    "syscall_exit_",
    "exit_to_user_mode",
    "syscall_return_via_sysret",
    "__x64_sys_",
    "__do_sys_",
    "__se_sys_",
];

/// The category a kernel function names, if any (scheduler names first: `io_schedule`
/// is the scheduler's, not io_uring's).
pub fn frame_category(name: &str) -> Option<Category> {
    let any = |list: &[&str]| list.iter().any(|p| name.starts_with(p));
    [
        (SCHED, Category::Sched),
        (TCP_IP, Category::TcpIp),
        (IO_URING, Category::IoUring),
        (EPOLL, Category::Epoll),
        (SYSCALL, Category::Syscall),
    ]
    .into_iter()
    .find(|(list, _)| any(list))
    .map(|(_, c)| c)
}

/// The category of one stack (root first, as folded).
pub fn classify(frames: &[&str]) -> Category {
    let kernel = || frames.iter().filter_map(|f| kernel_name(f));
    if kernel().any(is_softirq) {
        return Category::Softirq;
    }
    if let Some(c) = frames
        .iter()
        .rev()
        .filter_map(|f| kernel_name(f))
        .find_map(frame_category)
    {
        return c;
    }
    match frames.last() {
        Some(leaf) if kernel_name(leaf).is_none() => Category::User,
        _ => Category::OtherKernel,
    }
}

/// Samples per category of a folded profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Breakdown {
    pub counts: [u64; 8],
}

impl Breakdown {
    /// Of the folded lines `text`; a line that is not `STACK COUNT` is skipped.
    pub fn of_folded(text: &str) -> Breakdown {
        let mut b = Breakdown::default();
        for line in text.lines() {
            let Some((stack, n)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else {
                continue;
            };
            let frames: Vec<&str> = stack.split(';').collect();
            b.counts[classify(&frames) as usize] += n;
        }
        b
    }

    pub fn samples(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Each category's share in percent, to two decimals (all 0 without samples).
    pub fn shares(&self) -> Vec<(Category, f64)> {
        let total = self.samples().max(1) as f64;
        Category::ALL
            .iter()
            .map(|&c| {
                let pct = self.counts[c as usize] as f64 * 100.0 / total;
                (c, (pct * 100.0).round() / 100.0)
            })
            .collect()
    }

    /// `{"samples": N, "samples_by_category": {...}, "shares_pct": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut counts = Map::new();
        let mut shares = Map::new();
        for (c, pct) in self.shares() {
            counts.insert(c.key().into(), json!(self.counts[c as usize]));
            shares.insert(c.key().into(), json!(pct));
        }
        json!({
            "samples": self.samples(),
            "samples_by_category": counts,
            "shares_pct": shares,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDED: &str = "\
c1m-uring-0;main;c1m_server::uring::run;syscall;entry_SYSCALL_64_after_hwframe_[k];do_syscall_64_[k];__do_sys_io_uring_enter_[k];__io_run_local_work_[k];io_recv_[k];sock_recvmsg_[k];tcp_recvmsg_[k];_copy_to_iter_[k] 40
c1m-uring-0;main;c1m_server::uring::run;syscall;entry_SYSCALL_64_after_hwframe_[k];do_syscall_64_[k];__do_sys_io_uring_enter_[k];io_submit_sqes_[k];io_send_[k];tcp_sendmsg_[k];__dev_queue_xmit_[k];do_softirq_[k];net_rx_action_[k];tcp_v4_rcv_[k] 30
c1m-uring-0;main;c1m_server::uring::run;c1m_server::uring::handle 15
c1m-epoll-0;main;epoll_wait;entry_SYSCALL_64_after_hwframe_[k];do_syscall_64_[k];__x64_sys_epoll_wait_[k];do_epoll_wait_[k];ep_poll_[k];schedule_hrtimeout_range_[k];schedule_[k];__schedule_[k];finish_task_switch.isra.0_[k] 5
c1m-epoll-0;main;epoll_wait;entry_SYSCALL_64_after_hwframe_[k];do_syscall_64_[k];__x64_sys_epoll_wait_[k];do_epoll_wait_[k];ep_poll_[k];_raw_spin_lock_irq_[k] 4
c1m-epoll-0;main;read;entry_SYSCALL_64_after_hwframe_[k];syscall_exit_to_user_mode_[k] 3
c1m-epoll-0;main;asm_exc_page_fault_[k];exc_page_fault_[k];clear_page_erms_[k] 2
c1m-epoll-0;main;write;entry_SYSCALL_64_after_hwframe_[k];do_syscall_64_[k];__fdget_[k] 1
not a folded line
";

    #[test]
    fn each_sample_in_one_category() {
        let b = Breakdown::of_folded(FOLDED);
        let want = [
            (Category::TcpIp, 40),
            (Category::Softirq, 30),
            (Category::User, 15),
            (Category::Sched, 5),
            (Category::Epoll, 4),
            (Category::Syscall, 3 + 1),
            (Category::OtherKernel, 2),
            (Category::IoUring, 0),
        ];
        for (c, n) in want {
            assert_eq!(b.counts[c as usize], n, "{c:?}");
        }
        assert_eq!(b.samples(), 100);
        let sum: f64 = b.shares().iter().map(|s| s.1).sum();
        assert!((sum - 100.0).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn the_leaf_decides_before_its_callers() {
        let io = [
            "x",
            "__do_sys_io_uring_enter_[k]",
            "__io_run_local_work_[k]",
        ];
        assert_eq!(classify(&io), Category::IoUring);
        // io_schedule is the scheduler's, tcp under io_uring is TCP's.
        assert_eq!(
            classify(&["x", "io_submit_sqes_[k]", "io_schedule_[k]"]),
            Category::Sched
        );
        assert_eq!(
            classify(&["x", "io_send_[k]", "tcp_sendmsg_[k]"]),
            Category::TcpIp
        );
        // A user frame named like a kernel function is still user.
        assert_eq!(classify(&["x", "tcp_sendmsg"]), Category::User);
        assert_eq!(classify(&[]), Category::OtherKernel);
        let shares: f64 = Breakdown::of_folded("a;b 1\na;c_[k] 2\n")
            .shares()
            .iter()
            .map(|s| s.1)
            .sum();
        assert!((shares - 100.0).abs() < 0.02, "{shares}");
        let j = Breakdown::of_folded("a 3\n").to_json();
        assert_eq!(j["shares_pct"]["user"], json!(100.0));
        assert_eq!(j["samples"], json!(3));
    }
}
