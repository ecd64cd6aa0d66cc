//! Reacting to a failover as it happens: one subscriber per known Sentinel (its own
//! pub/sub carries every event at once, where its scripts start late and only on WARNING
//! events), each reconnecting with backoff; an event that can move roles wakes the
//! periodic loop, which then syncs at once. Events that come while a sync runs make one
//! more sync after it, however many they are.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::asked::Asked;
use crate::config::Config;
use crate::ocf::Logger;
use crate::sentinel::{Addr, Event, Subscription};
use crate::wake::{GuardWake, Trigger};

/// Events after which who should be what may have changed (a master's `+sdown` aside:
/// [`Event::is_masters_sdown`]).
const MOVING: &[&str] = &[
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    // Between `+odown` and `+selected-slave`: the replicas' INFO the foreseen promotion
    // waits for may have come in (`promote_at = foreseen`).
    "+try-failover",
    "+elected-leader",
    "+switch-master",
    "+selected-slave",
    "+promoted-slave",
    "+failover-end",
    "+convert-to-slave",
    "+slave-reconf-done",
    "+role-change",
    "-role-change",
];

/// Whether a sync should follow `event` at once.
pub(crate) fn moves_roles(event: &Event) -> bool {
    let name = event.name.as_str();
    (MOVING.contains(&name) || name.starts_with("-failover-abort")) && !event.is_masters_sdown()
}

/// The subscribers started so far, one per Sentinel address, for the process's life.
pub(crate) struct Watch {
    /// Fired on every event that can move roles.
    sync: Arc<Trigger>,
    /// Told every such event, and fired when a Sentinel's events are lost.
    guard: Arc<GuardWake>,
    /// Told every such event first, for the scripts' requests of it.
    asked: Arc<Asked>,
    followed: BTreeSet<Addr>,
    log: Logger,
}

/// Silence on a subscription this long is checked with a PING.
const EVENTS_IDLE: Duration = Duration::from_secs(10);

/// Between two attempts to subscribe: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

impl Watch {
    pub(crate) fn new(
        sync: Arc<Trigger>,
        guard: Arc<GuardWake>,
        asked: Arc<Asked>,
        log: Logger,
    ) -> Self {
        Watch {
            sync,
            guard,
            asked,
            followed: BTreeSet::new(),
            log,
        }
    }

    /// Subscribes to every Sentinel the config names or a sync `found` that is not
    /// followed yet (by canonical address: one subscription each); the password is read
    /// only when there is one to make.
    pub(crate) fn follow(&mut self, config: &Config, found: &[Addr]) {
        let new: BTreeSet<Addr> = config
            .sentinels
            .iter()
            .chain(found)
            .map(Addr::canonical)
            .filter(|a| !self.followed.contains(a))
            .collect();
        if new.is_empty() {
            return;
        }
        let credentials = match config.sentinel_client() {
            Ok(client) => client.credentials,
            Err(e) => {
                self.log
                    .warn(&format!("not following Sentinel's events: {e}"));
                return;
            }
        };
        let subscription = Subscription {
            timeout: config.timeout,
            idle: EVENTS_IDLE,
            credentials,
        };
        for addr in &new {
            self.followed.insert(addr.clone());
            let (owned, sub) = (addr.clone(), subscription.clone());
            let (sync, guard) = (Arc::clone(&self.sync), Arc::clone(&self.guard));
            let (asked, log) = (Arc::clone(&self.asked), self.log.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("events {addr}"))
                .spawn(move || subscriber(&owned, &sub, (&sync, &guard), &asked, &log));
            if let Err(e) = spawned {
                self.followed.remove(addr);
                self.log
                    .warn(&format!("cannot follow Sentinel {addr}'s events: {e}"));
            }
        }
    }
}

/// Follows one Sentinel forever; logs when the subscription breaks and when it is back.
fn subscriber(
    addr: &Addr,
    sub: &Subscription,
    (sync, guard): (&Trigger, &GuardWake),
    asked: &Asked,
    log: &Logger,
) {
    let mut pause = BACKOFF.0;
    let mut broken = false;
    loop {
        let started = Instant::now();
        let result = sub.follow(addr, |event: Event| {
            if broken {
                broken = false;
                log.info(&format!("following Sentinel {addr}'s events again"));
            }
            if moves_roles(&event) {
                // Before the wake-up: the sync it starts answers the scripts' requests of
                // the event too.
                asked.heard(&event.to_string());
                let why = format!("{event} (Sentinel {addr})");
                sync.fire(why.clone());
                guard.event(why);
            }
        });
        if let Err(e) = result {
            if !broken {
                log.warn(&format!(
                    "not following Sentinel {addr}'s events: {e}; trying again with backoff"
                ));
                // A Sentinel gone may be a failover's leader, the only one that knew of
                // the replica it was promoting: what the others say decides now.
                let why = format!("Sentinel {addr}'s events lost");
                sync.fire(why.clone());
                guard.fire(why);
            }
            broken = true;
        }
        // A subscription that lasted starts the backoff over.
        if started.elapsed() > BACKOFF.1 {
            pause = BACKOFF.0;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(BACKOFF.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, description: &str) -> Event {
        Event {
            name: name.into(),
            description: description.into(),
        }
    }

    #[test]
    fn events_that_move_roles_trigger_and_the_others_do_not() {
        for (e, d) in [
            ("+switch-master", "m 10.0.0.1 6379 10.0.0.2 6379"),
            ("+odown", "master m 10.0.0.1 6379 #quorum 2/2"),
            ("-sdown", "master m 10.0.0.1 6379"),
            (
                "+sdown",
                "slave 10.0.0.2:6379 10.0.0.2 6379 @ m 10.0.0.1 6379",
            ),
            ("+sdown", "sentinel 0123 10.0.0.3 26379 @ m 10.0.0.1 6379"),
            ("-failover-abort-no-good-slave", "master m 10.0.0.1 6379"),
        ] {
            assert!(moves_roles(&event(e, d)), "{e} {d}");
        }
        for (e, d) in [
            // One Sentinel's verdict: the sync waits for `+odown`.
            ("+sdown", "master m 10.0.0.1 6379"),
            (
                "+reboot",
                "slave 10.0.0.2:6379 10.0.0.2 6379 @ m 10.0.0.1 6379",
            ),
            (
                "+sentinel",
                "sentinel 0123 10.0.0.3 26379 @ m 10.0.0.1 6379",
            ),
            ("+tilt", "#tilt mode entered"),
            ("+new-epoch", "7"),
            ("+failover-state-select-slave", "master m 10.0.0.1 6379"),
        ] {
            assert!(!moves_roles(&event(e, d)), "{e} {d}");
        }
    }
}
