//! SSRF protection: endpoints are http(s) URLs, and deliveries connect only to public addresses.
//!
//! Names are resolved at connect time by [`Guard`], reqwest's DNS resolver here: it drops every
//! refused address and fails when none is left, so the address checked is the one connected to
//! (a name cannot resolve to a public address when checked and to 127.0.0.1 when connecting).
//! Literal IP hosts never reach a resolver; [`check_url`] refuses them, at endpoint creation and
//! again before every attempt. Redirects are never followed (see the delivery client).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not be delivered to, or `None` when it may.
pub fn refused(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4, allow_loopback),
        IpAddr::V6(v6) => refused_v6(v6, allow_loopback),
    }
}

const V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified (this network)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (and broadcast)"),
];

const V6: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b::/96", "IPv4 translation (NAT64)"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique local (private; includes cloud metadata fd00:ec2::254)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

fn refused_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    if ip.is_loopback() {
        return (!allow_loopback).then_some("loopback");
    }
    V4.iter().find(|(net, _)| net.parse::<Ipv4Net>().is_ok_and(|n| n.contains(&ip))).map(|(_, why)| *why)
}

fn refused_v6(ip: Ipv6Addr, allow_loopback: bool) -> Option<&'static str> {
    if ip.is_loopback() {
        return (!allow_loopback).then_some("loopback");
    }
    V6.iter().find(|(net, _)| net.parse::<Ipv6Net>().is_ok_and(|n| n.contains(&ip))).map(|(_, why)| *why)
}

/// The endpoint URL, checked: http or https, a host, no credentials; a literal IP host must be
/// an address deliveries may reach. Returns why not, as a sentence for the client.
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("only http and https URLs are delivered to, not {}:", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not accepted; use custom headers".into());
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the URL has no host")?;
    // The URL parser normalises IPv4 literals (0x7f000001 is 127.0.0.1) and brackets IPv6 ones.
    let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
        return Ok(url);
    };
    match refused(ip, allow_loopback) {
        Some(why) => Err(format!("{ip} is a {why} address; webhooks are delivered to public addresses only")),
        None => Ok(url),
    }
}

/// reqwest's resolver for deliveries: the system's resolution, refused addresses removed.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub allow_loopback: bool,
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused_addrs): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| refused(a.ip(), allow_loopback).is_none());
            if allowed.is_empty() {
                let why = refused_addrs
                    .iter()
                    .map(|a| format!("{} ({})", a.ip(), refused(a.ip(), allow_loopback).unwrap_or("refused")))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(Refused(format!(
                    "{host} resolves only to addresses webhooks may not reach: {why}"
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A delivery refused before connecting.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
pub struct Refused(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_with_a_reason() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local (cloud metadata)")),
            ("100.64.0.1", Some("shared address space (CGNAT)")),
            ("0.0.0.0", Some("unspecified (this network)")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("reserved (and broadcast)")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("::ffff:127.0.0.1", Some("IPv4-mapped")),
            ("::ffff:8.8.8.8", Some("IPv4-mapped")),
            ("fd00:ec2::254", Some("unique local (private; includes cloud metadata fd00:ec2::254)")),
            ("fe80::1", Some("link-local")),
            ("ff02::1", Some("multicast")),
            ("8.8.8.8", None),
            ("2606:4700:4700::1111", None),
        ];
        for (ip, why) in cases {
            assert_eq!(refused(ip.parse().expect("ip"), false), why, "{ip}");
        }
        assert_eq!(refused("127.0.0.1".parse().expect("ip"), true), None);
        assert_eq!(refused("::1".parse().expect("ip"), true), None);
        assert!(refused("10.0.0.1".parse().expect("ip"), true).is_some(), "loopback only");
    }

    #[test]
    fn urls_are_http_with_public_literal_hosts() {
        for (url, part) in [
            ("ftp://example.com/", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
            ("http://127.0.0.1:8080/", "loopback"),
            ("http://10.0.0.1/", "private"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://[::1]/", "loopback"),
            ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
            ("http://0x7f000001/", "loopback"),
            ("https://user:pw@example.com/", "credentials"),
            ("not a url", "not a URL"),
        ] {
            let err = check_url(url, false).expect_err(url);
            assert!(err.contains(part), "{url}: {err}");
        }
        assert!(check_url("https://hooks.example.com/in?x=1", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_when_resolved() {
        let guard = Guard { allow_loopback: false };
        let err = match guard.resolve("localhost".parse().expect("name")).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("localhost resolves only to") && err.contains("loopback"), "{err}");
        let allowed = Guard { allow_loopback: true };
        let addrs: Vec<SocketAddr> =
            allowed.resolve("localhost".parse().expect("name")).await.expect("allowed").collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
