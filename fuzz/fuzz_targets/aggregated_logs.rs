#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| yarn_flink_fuzz::aggregated_logs(data));
