//! Fuzz target: An agent's state file, whatever is left in it. See `redis_ha_ocf::fuzz_api::agent_state_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = redis_ha_ocf::fuzz_api::agent_state_file(data);
});
