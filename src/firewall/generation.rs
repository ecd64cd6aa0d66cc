//! The nf_tables ruleset generation of this network namespace: a counter the kernel bumps
//! with every ruleset change, by anyone. Rules seen present at generation G are still
//! present while the generation is G, so a monitor can skip iptables entirely.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NFNETLINK_V0: u8 = 0;
const HEADER: usize = 16;
const NFGENMSG: usize = 4;

/// The generation qualified by boot and network namespace: generations restart from a
/// small number in every new namespace, and a state directory may outlive one.
pub(crate) fn version() -> io::Result<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?;
    let netns = std::fs::metadata("/proc/self/ns/net")?;
    Ok(format!(
        "{}/{}:{}/{}",
        boot.trim(),
        netns.dev(),
        netns.ino(),
        current()?
    ))
}

/// Asks the kernel for the current ruleset generation (needs CAP_NET_ADMIN).
fn current() -> io::Result<u32> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(1, 0))?;
    let seq = std::process::id();
    sendto(
        fd.as_raw_fd(),
        &request(seq),
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = [0u8; 512];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    parse(&buf[..n], seq)
}

/// An `NFT_MSG_GETGEN` request: netlink header plus nfgenmsg, no attributes.
fn request(seq: u32) -> [u8; HEADER + NFGENMSG] {
    let mut msg = [0u8; HEADER + NFGENMSG];
    msg[0..4].copy_from_slice(&((HEADER + NFGENMSG) as u32).to_ne_bytes());
    msg[4..6].copy_from_slice(&(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN).to_ne_bytes());
    msg[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nfgenmsg: family AF_UNSPEC, version, resource id 0.
    msg[HEADER + 1] = NFNETLINK_V0;
    msg
}

/// Reads `NFTA_GEN_ID` out of the `NFT_MSG_NEWGEN` answer to request `seq`.
fn parse(reply: &[u8], seq: u32) -> io::Result<u32> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"));
    if reply.len() < HEADER {
        return Err(bad("short reply"));
    }
    let u16_at = |i: usize| u16::from_ne_bytes([reply[i], reply[i + 1]]);
    let u32_at =
        |i: usize| u32::from_ne_bytes([reply[i], reply[i + 1], reply[i + 2], reply[i + 3]]);
    let len = (u32_at(0) as usize).min(reply.len());
    let kind = u16_at(4);
    if u32_at(8) != seq {
        return Err(bad("reply to another request"));
    }
    if kind == NLMSG_ERROR && len >= HEADER + 4 {
        let errno = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if kind != (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN) {
        return Err(bad("unexpected message type"));
    }
    let mut at = HEADER + NFGENMSG;
    while at + 4 <= len {
        let attr_len = u16_at(at) as usize;
        if attr_len < 4 || at + attr_len > len {
            break;
        }
        if u16_at(at + 2) & 0x3fff == NFTA_GEN_ID && attr_len >= 8 {
            let v = &reply[at + 4..at + 8];
            return Ok(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
        }
        at += (attr_len + 3) & !3;
    }
    Err(bad("no generation id in the reply"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(kind: u16, seq: u32, attrs: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((HEADER + NFGENMSG + attrs.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(attrs);
        m
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    #[test]
    fn request_is_a_getgen_of_the_nftables_subsystem() {
        let r = request(7);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 0x0a10);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
    }

    #[test]
    fn generation_is_read_from_its_attribute() {
        let kind = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN;
        let mut attrs = attr(2, &[0, 0, 0, 9]); // NFTA_GEN_PROC_PID first
        attrs.extend(attr(NFTA_GEN_ID, &42u32.to_be_bytes()));
        assert_eq!(parse(&reply(kind, 5, &attrs), 5).unwrap(), 42);
        assert!(
            parse(&reply(kind, 5, &attrs), 6).is_err(),
            "another request's answer"
        );
        assert!(
            parse(&reply(kind, 5, &attr(2, &[0; 4])), 5).is_err(),
            "no id"
        );
        assert!(parse(&reply(0x0a06, 5, &attrs), 5).is_err(), "not NEWGEN");
        assert!(parse(&[0; 8], 5).is_err(), "short");
        // An error reply carries the negative errno right after the header.
        let mut eperm = reply(NLMSG_ERROR, 5, &[]);
        eperm.truncate(HEADER);
        eperm.extend_from_slice(&(-1i32).to_ne_bytes());
        let len = eperm.len() as u32;
        eperm[0..4].copy_from_slice(&len.to_ne_bytes());
        assert_eq!(parse(&eperm, 5).unwrap_err().raw_os_error(), Some(1));
    }
}
