//! The SSRF guard: which addresses the fetcher may connect to (public unicast only, plus
//! loopback when allowed), and a resolver that keeps only those (DNS pinning).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{CimdError, CimdErrorKind};

/// The error for a host that is not on the public internet.
pub(super) fn blocked() -> CimdError {
    CimdError::new(
        CimdErrorKind::Blocked,
        "the client metadata document host is not on the public internet (private, loopback, link-local or reserved address)",
    )
}

/// Whether the fetcher may connect to `ip`: public unicast only (plus loopback when allowed).
pub(crate) fn permitted(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => permitted_v4(v4, allow_loopback),
        IpAddr::V6(v6) => permitted_v6(v6, allow_loopback),
    }
}

fn permitted_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let [a, b, c, _] = ip.octets();
    let forbidden = a == 0 // "this network", unspecified
        || a == 10 // private
        || (a == 100 && (64..=127).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254) // link-local, cloud metadata 169.254.169.254
        || (a == 172 && (16..=31).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // documentation TEST-NET-3
        || a >= 224; // multicast, reserved 240/4, broadcast
    !forbidden
}

fn permitted_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    if ip.is_unspecified() {
        return false;
    }
    // ::ffff:a.b.c.d
    if let Some(v4) = ip.to_ipv4_mapped() {
        return permitted_v4(v4, allow_loopback);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // ::/96 (IPv4-compatible, deprecated) and everything else under ::/8 but the cases above.
    if s[0] == 0 {
        return false;
    }
    // 64:ff9b::/96 NAT64: judge the embedded address (never loopback through a translator).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return permitted_v4(embedded(s[6], s[7]), false);
    }
    // 2002::/16 6to4: judge the embedded address.
    if s[0] == 0x2002 {
        return permitted_v4(embedded(s[1], s[2]), false);
    }
    let forbidden = (s[0] == 0x64 && s[1] == 0xff9b) // other NAT64 prefixes (64:ff9b:1::/48)
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments 2001::/23 (Teredo, ORCHID, ...)
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation 2001:db8::/32
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation 3fff::/20
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] & 0xff00) == 0xff00; // multicast
    // Only global unicast (2000::/3) is routed on the internet.
    !forbidden && (s[0] & 0xe000) == 0x2000
}

/// Why the resolver refused a name (found again in the `reqwest` error chain).
#[derive(Debug, thiserror::Error)]
pub(super) enum Refused {
    #[error("the host name resolves only to non-public addresses")]
    Blocked,
    #[error("the host name could not be resolved")]
    Unresolvable,
}

/// Resolves with the system resolver and keeps only permitted addresses; the connection is
/// made to exactly these (DNS pinning).
#[derive(Clone, Copy, Debug)]
pub(super) struct GuardedResolver {
    pub(super) allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| {
                    Box::new(Refused::Unresolvable) as Box<dyn std::error::Error + Send + Sync>
                })?
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(Refused::Unresolvable) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| permitted(a.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused::Blocked) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
