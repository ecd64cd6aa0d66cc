//! Entry point of the multi-call `redis-ha` binary: hand the process to the library, exit with its code.

fn main() {
    let code = redis_ha_ocf::run(redis_ha_ocf::Process::from_std());
    std::process::exit(code);
}
