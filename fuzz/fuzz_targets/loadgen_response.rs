//! The loadgen's answer verification (http, echo, frame): every response verified or
//! counted as wrong, the same however the stream is cut, bounded memory, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| c1m_loadgen::engine::proto::check::fuzz_response(data));
