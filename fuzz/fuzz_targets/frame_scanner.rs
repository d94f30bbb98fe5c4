//! The relay's frame-header scanner over any byte stream, read in any pieces.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsgate_gateway::fuzzing::frames(data));
