//! Fuzz target: `cibadmin --query`'s output. See `redis_ha_ocf::fuzz_api::cib`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = redis_ha_ocf::fuzz_api::cib(data);
});
