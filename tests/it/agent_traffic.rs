//! The block agents against real iptables and a real Redis behind the REDIRECT: what a
//! client actually gets on the read and write ports.

use crate::util::{AgentCall, Pair, Probe, Redis, SERVER_V4, TempDir, bin, run_ok, sock};

/// A server namespace with Redis and `redis-ha ports install`, and a client namespace.
struct Node {
    pair: Pair,
    _redis: Redis,
    dir: TempDir,
}

impl Node {
    fn new(tag: &str) -> Self {
        let pair = Pair::new(tag);
        let redis = Redis::start(&pair.server);
        run_ok(pair.server.cmd(bin()).args(["ports", "install"]));
        Node {
            pair,
            _redis: redis,
            dir: TempDir::new(tag),
        }
    }

    fn agent(&self, name: &str) -> AgentCall<'_> {
        AgentCall::new(
            &self.pair.server,
            &self.dir.persona(name),
            &self.dir.join("rsctmp"),
        )
    }

    /// (remote read, remote write, local read, local write) as clients see them.
    fn probes(&self) -> [Probe; 4] {
        [
            self.pair.client.probe(sock(SERVER_V4, 6380)),
            self.pair.client.probe(sock(SERVER_V4, 6381)),
            self.pair.server.probe(sock("127.0.0.1", 6380)),
            self.pair.server.probe(sock("127.0.0.1", 6381)),
        ]
    }
}

#[test]
fn write_block_refuses_writes_with_a_reset_and_stop_reopens() {
    let node = Node::new("wb");
    let open = [Probe::Pong, Probe::Pong, Probe::Pong, Probe::Pong];
    assert_eq!(node.probes(), open, "before start");
    let agent = node.agent("RedisLBWriteBlock");
    agent.run("start").expect(0);
    assert_eq!(
        node.probes(),
        [Probe::Pong, Probe::Refused, Probe::Pong, Probe::Refused],
        "after start\n{}",
        node.pair.server.dump("iptables-save")
    );
    agent.run("monitor").expect(0);
    agent.run("stop").expect(0);
    assert_eq!(node.probes(), open, "after stop");
    agent.run("monitor").expect(7);
}
