//! The API's accept loop: axum's router on hyper's HTTP/1 connections, with the limits
//! `axum::serve` does not set, so that no client holds a connection for longer than it uses it:
//! - a client that never finishes its request headers is cut off after the header-read timeout
//!   (hyper starts that clock whenever a connection waits for a request, so an idle keep-alive
//!   connection is closed by it too);
//! - a connection on which no byte moves for the idle timeout is closed, and so is one whose
//!   client does not take a response within the write timeout (one that pipelines requests and
//!   never reads its answers would otherwise hold its connection for ever);
//! - at most `max_connections` are open at once, further ones waiting in the kernel's backlog
//!   instead of costing memory, and at most `max_connections_per_ip` from one address (IPv6
//!   counted per /64), so one address cannot take them all; one over its share is closed at once.
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use axum::{Router, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use nightshift_common::config::ServerLimits;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

/// Serves `router` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(share) = per_ip.take(peer.ip()) else {
            metrics::counter!("nightshift_api_connections_refused_total", "reason" => "per_ip").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(Some(limits.idle_timeout));
        stream.set_write_timeout(Some(limits.write_timeout));
        // The peer address, for per-IP rate limits and the audit trail.
        let service = router.clone().map_request(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let conn = http.serve_connection(TokioIo::new(Box::pin(stream)), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that went away or timed out is not an error of ours.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop((slot, share));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Open connections per address (IPv6 per /64), against a cap; 0 = no cap.
struct PerIp {
    cap: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of an address; dropping it gives the share back.
struct Share {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    fn new(cap: usize) -> Self {
        PerIp {
            cap,
            open: Arc::default(),
        }
    }

    /// A share of the address's connections, or `None` when it holds its cap already.
    fn take(&self, ip: IpAddr) -> Option<Option<Share>> {
        if self.cap == 0 {
            return Some(None);
        }
        let ip = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Some(Share {
            ip,
            open: self.open.clone(),
        }))
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What one client is: an IPv4 address, or an IPv6 /64 (a host is given a whole /64, so any
/// finer count would let one host open a connection per address it makes up). An IPv4 address
/// mapped into IPv6 is the IPv4 address.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The `Host` values the dashboard answers on when no public URL is configured: the address
/// the API listens on, and `localhost` on its port.
pub fn default_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ];
    if !addr.ip().is_unspecified() {
        hosts.push(addr.to_string());
    }
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_per_ipv4_address_and_per_ipv6_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(address_key(ip("2001:db8:1:2:ffff:1:2:3")), ip("2001:db8:1:2::"));
        assert_ne!(address_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn an_address_holds_at_most_its_cap_and_a_closed_connection_frees_its_share() {
        let per_ip = PerIp::new(2);
        let a = ip_v4(1);
        let first = per_ip.take(a).expect("under the cap");
        let _second = per_ip.take(a).expect("at the cap");
        assert!(per_ip.take(a).is_none(), "over the cap");
        assert!(per_ip.take(ip_v4(2)).is_some(), "another address has its own share");
        drop(first);
        assert!(per_ip.take(a).is_some(), "a closed connection gives its share back");
        let unlimited = PerIp::new(0);
        assert!((0..10_000).all(|_| unlimited.take(a).is_some()));
    }

    fn ip_v4(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }
}
