#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| contractcourt_core::fuzzing::trace_replay(data));
