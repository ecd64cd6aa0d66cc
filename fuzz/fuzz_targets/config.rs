//! Fuzz target: redis-ha.conf, as `Config::load` reads it. See `redis_ha_ocf::fuzz_api::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = redis_ha_ocf::fuzz_api::config(data);
});
