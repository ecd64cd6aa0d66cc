//! The OCF resource agent API (1.1): exit codes, actions, the environment execd gives, logging.

mod action;
mod code;
mod env;
mod log;

pub(crate) use action::Action;
pub(crate) use code::OcfCode;
pub(crate) use env::OcfEnv;
pub(crate) use log::{Logger, civil_utc};
