//! Fuzz target: An agent's argv[1] and environment, as Pacemaker's execd passes them. See `redis_ha_ocf::fuzz_api::agent_params`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = redis_ha_ocf::fuzz_api::agent_params(data);
});
