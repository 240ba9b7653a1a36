//! The server's frame parser: split invariance, no panic, bounded sessions.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| c1m_server::proto::check::fuzz_frame(data));
