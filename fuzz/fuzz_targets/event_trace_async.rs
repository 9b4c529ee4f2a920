#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| contractcourt_core::fuzzing::event_trace_out_of_order(data));
