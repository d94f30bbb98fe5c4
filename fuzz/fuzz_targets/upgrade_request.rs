//! A client's upgrade request, from its first byte to the request sent upstream.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsgate_gateway::fuzzing::upgrade_request(data));
