//! A case as typed data, the same for every scenario: which server (a c1m backend with
//! its variant's flags, the Go reference, or nginx), which client (c1m-loadgen shards or
//! wrk), the load, the point and the round. [`crate::runcase::run_case`] runs any of them.

use crate::plan::{Scenario, MSG_SIZE};
use crate::topology::placement::ShardLoad;
use crate::variants::Variant;
use crate::wire::Wire;
use std::net::Ipv4Addr;

/// The server of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// `c1m-server` with the variant's backend and flags (the Go reference: its own
    /// binary, the same flags).
    C1m(Variant),
    /// nginx with the nginx.conf of [`crate::http::nginx::render`].
    Nginx,
}

impl Server {
    /// As case.json and the tables name it: the backend, or `nginx`.
    pub fn name(&self) -> &str {
        match self {
            Server::C1m(v) => v.backend.name(),
            Server::Nginx => "nginx",
        }
    }

    /// The variant it stands for in case.json: the variant's name, or `nginx`.
    pub fn variant_name(&self) -> &str {
        match self {
            Server::C1m(v) => &v.name,
            Server::Nginx => "nginx",
        }
    }
}

/// The client of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `c1m-loadgen run`, one shard per client of the topology.
    Loadgen,
    /// wrk, one process where the first shard would run (after a warm-up run of its own).
    Wrk,
}

impl Client {
    pub const BOTH: [Client; 2] = [Client::Loadgen, Client::Wrk];

    /// As the tables show it.
    pub fn name(self) -> &'static str {
        match self {
            Client::Loadgen => "c1m-loadgen",
            Client::Wrk => "wrk",
        }
    }

    /// As run folder names show it.
    pub fn short(self) -> &'static str {
        match self {
            Client::Loadgen => "loadgen",
            Client::Wrk => "wrk",
        }
    }

    pub fn from_name(name: &str) -> Option<Client> {
        Client::BOTH.into_iter().find(|c| c.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    /// Samples slab and sockets while holding, measures the teardown, writes hold.json.
    Hold,
}

/// One run of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The run folder's name (`round-R/` first with several rounds).
    pub name: String,
    pub scenario: Scenario,
    /// The point's name (`c1000`, `c1000-r50`); empty where a scenario has one point.
    pub point: String,
    /// With several rounds, this run's round.
    pub round: Option<u32>,
    pub server: Server,
    pub client: Client,
    /// What server and client speak.
    pub wire: Wire,
    pub conns: u64,
    /// Open loop: messages (requests) per second of the whole case; None: closed loop.
    pub rate: Option<u64>,
    /// Source addresses of its own (churn: its TIME_WAITs stay off other cases' ports).
    pub sources: Option<Vec<Ipv4Addr>>,
    /// `--max-conns` for the server (uring hold), else derived.
    pub max_conns: Option<u64>,
    pub kind: Kind,
    /// The loadgen's other options (duration, warm-up, heartbeat, churn, ...).
    pub loadgen_args: Vec<String>,
}

impl Case {
    /// What the loadgen shards share out.
    pub fn shard_load(&self) -> ShardLoad {
        ShardLoad {
            conns: self.conns,
            rate: self.rate,
            sources: self.sources.clone(),
        }
    }

    /// The loadgen's `--size`: [`MSG_SIZE`]-byte messages, none for http.
    pub fn msg_size(&self) -> Option<u64> {
        self.wire.size(MSG_SIZE)
    }

    /// The http scenario asks its servers for the contract's answer before the client
    /// starts, and measures their CPU over the client's window (server_cpu.json).
    pub fn is_http(&self) -> bool {
        self.scenario == Scenario::Http
    }

    /// Body bytes of an http answer, when the case speaks http.
    pub fn body_size(&self) -> Option<u64> {
        match self.wire {
            Wire::Http { body } => Some(body),
            Wire::Echo | Wire::Frame => None,
        }
    }
}
