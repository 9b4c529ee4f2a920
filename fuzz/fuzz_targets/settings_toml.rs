#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| contractcourt_sync::fuzzing::settings_toml(data));
