//! An access token as the gateway decodes it before any key is involved.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsgate_gateway::fuzzing::jwt(data));
