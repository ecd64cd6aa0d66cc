//! Fuzz target: The arguments Sentinel passes its reconfig and notification scripts. See `redis_ha_ocf::fuzz_api::sentinel_argv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = redis_ha_ocf::fuzz_api::sentinel_argv(data);
});
