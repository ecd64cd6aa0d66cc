//! Fuzz target: A Sentinel's bytes for SENTINEL MASTER/REPLICAS/SENTINELS in one round trip. See `redis_ha_ocf::fuzz_api::sentinel_replies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = redis_ha_ocf::fuzz_api::sentinel_replies(data);
});
