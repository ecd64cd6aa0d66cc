//! Asking the Sentinels: the configured ones first, then in each round those the last
//! answers named that nobody asked yet, every Sentinel of a round at once (a silent one
//! costs one timeout per round, not one each).

use std::collections::BTreeSet;

use super::{ObserveError, Offsets};
use crate::config::Config;
use crate::sentinel::{Addr, SentinelError, SentinelView, Sentinels};

/// What the Sentinels answered: every view, and why each silent one was silent.
pub(crate) struct Answers {
    pub(crate) views: Vec<SentinelView>,
    pub(crate) silent: Vec<SentinelError>,
}

/// Every known Sentinel's view of the master. A wrong master name or password stops
/// here (retrying cannot help); silence just counts less.
pub(crate) fn ask<S: Sentinels + Sync>(
    config: &Config,
    sentinels: &S,
) -> Result<Answers, ObserveError> {
    let mut asked: BTreeSet<Addr> = BTreeSet::new();
    let mut round: Vec<Addr> = config.sentinels.clone();
    let mut views = Vec::new();
    let mut silent = Vec::new();
    while !round.is_empty() {
        round.retain(|addr| asked.insert(addr.clone()));
        let mut next = Vec::new();
        for answer in at_once(config, sentinels, &round) {
            if let Some(view) = sort(answer, &mut silent)? {
                next.extend(view.sentinels.iter().map(|peer| peer.addr.clone()));
                views.push(view);
            }
        }
        next.retain(|addr| !asked.contains(addr));
        round = next;
    }
    Ok(Answers { views, silent })
}

/// The Sentinels of `views` asked again, all at once: their new answers. One silent now
/// counts as silent (the decision then needs a majority without it).
pub(crate) fn again<S: Sentinels + Sync>(
    config: &Config,
    sentinels: &S,
    views: &[SentinelView],
) -> Result<Answers, ObserveError> {
    let round: Vec<Addr> = views.iter().map(|v| v.sentinel.clone()).collect();
    let mut answers = Answers {
        views: Vec::new(),
        silent: Vec::new(),
    };
    for answer in at_once(config, sentinels, &round) {
        answers.views.extend(sort(answer, &mut answers.silent)?);
    }
    Ok(answers)
}

/// One Sentinel's answer: its view; or why it was silent, kept in `silent`; or, for a
/// wrong master name or password, the end of the observation (retrying cannot help).
fn sort(
    answer: Result<SentinelView, SentinelError>,
    silent: &mut Vec<SentinelError>,
) -> Result<Option<SentinelView>, ObserveError> {
    match answer {
        Ok(view) => Ok(Some(view)),
        Err(e @ (SentinelError::UnknownMaster { .. } | SentinelError::Auth { .. })) => {
            Err(ObserveError::Refused(e))
        }
        Err(e @ (SentinelError::Unreachable { .. } | SentinelError::Protocol { .. })) => {
            silent.push(e);
            Ok(None)
        }
    }
}

/// The replicas' own offsets, asked of them all at once; those that answered.
pub(crate) fn offsets<S: Sentinels + Sync>(sentinels: &S, replicas: &[Addr]) -> Offsets {
    std::thread::scope(|scope| {
        let asks: Vec<_> = replicas
            .iter()
            .map(|addr| scope.spawn(move || (addr, sentinels.replica_offset(addr))))
            .collect();
        asks.into_iter()
            .filter_map(|ask| {
                let (addr, offset) = ask.join().expect("asking a replica does not panic");
                Some((addr.clone(), offset?))
            })
            .collect()
    })
}

/// One round's answers, in the order of `round`.
fn at_once<S: Sentinels + Sync>(
    config: &Config,
    sentinels: &S,
    round: &[Addr],
) -> Vec<Result<SentinelView, SentinelError>> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = round
            .iter()
            .map(|addr| scope.spawn(move || sentinels.view(addr, &config.master_name)))
            .collect();
        asks.into_iter()
            .map(|ask| ask.join().expect("a Sentinel question does not panic"))
            .collect()
    })
}
