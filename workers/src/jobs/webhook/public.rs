//! Webhook targets are user-supplied URLs: the client only connects to public addresses
//! (checked after resolution, by its own resolver) and never through a proxy.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The client webhook jobs share: no redirects (a receiver must not bounce a signed request
/// elsewhere), no proxy, a bounded time per request, and public addresses only unless
/// `allow_private`.
pub fn http_client(allow_private: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        // Never a proxy from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY...): through a
        // proxy, the proxy resolves the name and connects, and our public-address checks would
        // only ever see the proxy's address. A webhook proxy would have to be configured
        // explicitly, and then do the public-address filtering itself.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("nightshift-webhooks/", env!("CARGO_PKG_VERSION")));
    if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    }
    .build()
    .expect("a TLS backend is compiled in")
}

const NOT_PUBLIC: &str = "is not a public address (NIGHTSHIFT_WEBHOOK_ALLOW_PRIVATE=1 allows it)";

/// A target refused for its address: the resolver's error, found again in the request's
/// error chain so the delivery fails at once instead of retrying.
#[derive(Debug, thiserror::Error)]
#[error("{0} {NOT_PUBLIC}")]
struct NotPublic(String);

pub(super) fn refused_by_resolver(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if err.is::<NotPublic>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Whether an address is on the public internet: not loopback, private, link-local (the cloud
/// metadata service), shared, documentation, multicast, reserved or unspecified, nor an IPv6
/// form that leads to an IPv4 address we cannot check.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback() // 127/8
        || v4.is_private() // 10/8, 172.16/12, 192.168/16
        || v4.is_link_local() // 169.254/16, with the metadata service
        || v4.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || v4.is_multicast() // 224/4
        || a == 0 // 0/8 "this network", 0.0.0.0 included
        || a >= 240 // 240/4 reserved, 255.255.255.255 broadcast included
        || (a == 100 && (64..128).contains(&b)) // 100.64/10, carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24, IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19))) // 198.18/15, benchmarking
}

/// IPv6 ranges refused beyond `Ipv6Addr`'s own predicates, as (network, prefix length).
const NOT_PUBLIC_V6: [(Ipv6Addr, u32); 6] = [
    // NAT64, well-known and local-use prefixes: the gateway connects to the IPv4 address in
    // the low bits, private or not.
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
    // 6to4 (2002:AABB:CCDD::) and Teredo (2001::/32) also tunnel to an embedded IPv4 address.
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),
    // Documentation.
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    // Site-local: deprecated, yet still routed inside some networks.
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
];

fn is_public_v6(v6: Ipv6Addr) -> bool {
    // IPv4-mapped `::ffff:a.b.c.d` and IPv4-compatible `::a.b.c.d` reach `a.b.c.d`: the IPv4
    // rules decide. `::` and `::1` are in `::/96` too, and refused as 0.0.0.0 and 0.0.0.1.
    if let Some(v4) = v6.to_ipv4() {
        return is_public_v4(v4);
    }
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || v6.is_unique_local()
        || v6.is_unicast_link_local()
        || NOT_PUBLIC_V6.iter().any(|&(net, len)| in_prefix(v6, net, len)))
}

/// Whether the first `len` bits (1..=128) of `ip` and `net` are equal.
fn in_prefix(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = u128::MAX << (128 - len);
    ip.to_bits() & mask == net.to_bits() & mask
}

/// Refuses an endpoint whose host is a literal non-public address (names go through
/// [`PublicOnly`] when the request is made).
pub fn refused_literal(url: &str) -> Option<String> {
    let host = url::Url::parse(url).ok()?.host()?.to_owned();
    let ip = match host {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    (!is_public(ip)).then(|| format!("{ip} {NOT_PUBLIC}"))
}

/// A resolver that drops every non-public address, and fails when none is left.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_public_addresses_are_webhook_targets() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!super::is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(super::is_public(public.parse().unwrap()), "{public}");
        }
        assert!(super::refused_literal("http://169.254.169.254/latest/meta-data").is_some());
        assert!(super::refused_literal("http://[::1]:8080/hook").is_some());
        assert_eq!(super::refused_literal("https://hooks.example.com/x"), None);
    }

    use super::*;

    #[test]
    fn every_refused_range_is_refused_and_public_addresses_pass() {
        let table: &[(&str, bool)] = &[
            // IPv4.
            ("0.1.2.3", false),
            ("10.0.0.1", false),
            ("100.64.0.1", false),
            ("100.127.255.254", false),
            ("127.0.0.2", false),
            ("169.254.169.254", false),
            ("172.31.255.255", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("192.168.0.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv4-mapped and IPv4-compatible: the embedded IPv4 decides.
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::127.0.0.1", false),
            ("::10.0.0.1", false),
            ("::169.254.169.254", false),
            // IPv6.
            ("::", false),
            ("::1", false),
            ("ff02::1", false),
            ("fc00::1", false),
            ("fdff::1", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("feff::1", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::808:808", false),
            ("64:ff9b:1::1", false),
            ("2002:a9fe:a9fe::1", false),
            ("2002:808:808::1", false),
            ("2001::1", false),
            ("2001:0:ffff::1", false),
            ("2001:db8::1", false),
            ("2001:db8:ffff::1", false),
            // Public, including the neighbours of refused ranges.
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.216.34", true),
            ("100.128.0.1", true),
            ("172.32.0.1", true),
            ("192.0.1.1", true),
            ("198.20.0.1", true),
            ("223.255.255.254", true),
            ("::ffff:8.8.8.8", true),
            ("2606:4700:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("2001:1::1", true),
            ("2001:db9::1", true),
            ("2003::1", true),
            ("64:ff9b:2::1", true),
        ];
        for &(addr, public) in table {
            assert_eq!(is_public(addr.parse().unwrap()), public, "{addr}");
        }
        // Literal hosts go through the same rules before any request is made.
        assert!(refused_literal("http://[64:ff9b::a9fe:a9fe]/x").is_some());
        assert!(refused_literal("http://[::ffff:127.0.0.1]/x").is_some());
        assert_eq!(refused_literal("https://8.8.8.8/x"), None);
    }

    /// What the child process of `the_client_ignores_proxies_from_the_environment` runs.
    const CHILD_MODE: &str = "NIGHTSHIFT_TEST_PROXY_CHILD";
    const CHILD_TARGET: &str = "NIGHTSHIFT_TEST_PROXY_TARGET";

    /// A one-line HTTP server on 127.0.0.1 that answers `body` to every request, and counts
    /// the connections it accepted. Its thread ends with the test process.
    fn fake_server(body: &'static str) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes());
            }
        });
        (addr, hits)
    }

    /// Runs `proxy_child` in a child process with every proxy variable pointing at a fake proxy,
    /// and returns how many connections the proxy and the target each saw.
    fn connections_with_env_proxy(mode: &str) -> (usize, usize) {
        let (proxy, proxy_hits) = fake_server("proxy");
        let (target, target_hits) = fake_server("target");
        let proxy_url = format!("http://{proxy}");
        let test_name = concat!(module_path!(), "::proxy_child").split_once("::").unwrap().1;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args([test_name, "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            child.env(var, &proxy_url);
        }
        // NO_PROXY would exempt 127.0.0.1, and REQUEST_METHOD (CGI) makes HTTP_PROXY ignored.
        for var in ["NO_PROXY", "no_proxy", "REQUEST_METHOD"] {
            child.env_remove(var);
        }
        let out = child
            .env(CHILD_MODE, mode)
            .env(CHILD_TARGET, format!("http://{target}/hook"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child ({mode}) failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let load = |hits: &std::sync::atomic::AtomicUsize| hits.load(std::sync::atomic::Ordering::SeqCst);
        (load(&proxy_hits), load(&target_hits))
    }

    // Setting HTTP_PROXY in this process would need `unsafe { std::env::set_var }` (forbidden
    // here, and racy with the other tests' threads), and reqwest exposes no way to ask a built
    // client about its proxies. So the client is built and used in a child process (this test
    // binary again, running only `proxy_child`) whose environment has the proxy variables set.
    // The control run, with a default reqwest client, proves that the environment does route
    // requests through the fake proxy, so the webhook client's run is meaningful.
    #[test]
    fn the_client_ignores_proxies_from_the_environment() {
        assert_eq!(
            connections_with_env_proxy("default"),
            (1, 0),
            "control: a default client goes through the proxy"
        );
        // allow_private, so that the loopback target is reachable; the proxy setting is the
        // same for both values.
        assert_eq!(
            connections_with_env_proxy("webhook"),
            (0, 1),
            "the webhook client connects to the target itself"
        );
    }

    #[tokio::test]
    #[ignore = "run in a child process by the_client_ignores_proxies_from_the_environment"]
    async fn proxy_child() {
        let (Ok(mode), Ok(target)) = (std::env::var(CHILD_MODE), std::env::var(CHILD_TARGET)) else {
            return;
        };
        let (client, expected) = match mode.as_str() {
            "webhook" => (http_client(true), "target"),
            _ => (reqwest::Client::new(), "proxy"),
        };
        let body = client.post(&target).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, expected);
    }
}
