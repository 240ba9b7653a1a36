//! The one reader of a run folder lives in the loadgen's report layer
//! (`c1m_loadgen::report::casedir`), so `c1m-loadgen compare` reads the orchestrator's
//! folders the same way; the bench names it here.

pub use c1m_loadgen::report::casedir::{
    backend_and_point, num, read_all, run_dirs, CaseRecord, RunFolder, CASE_FILE,
};
