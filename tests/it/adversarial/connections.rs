//! Slow and greedy clients: cut off at the server's timeouts and caps while health and
//! readiness still answer.
use super::*;

#[tokio::test]
async fn slow_clients_are_cut_off_and_health_answers_while_500_of_them_hang() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.server.header_read_timeout = Duration::from_secs(3);
    // All 500 come from this one address: the per-address cap (its own test) would refuse most
    // of them at once, and health's request with them.
    config.server.max_connections_per_ip = 0;
    let app = App::start(&config, false).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Headers begun, never finished.
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for _ in 0..5 {
        let live = quick.get(format!("{}/health/live", app.base)).send().await;
        assert_eq!(
            live.map(|r| r.status().as_u16()).ok(),
            Some(200),
            "health did not answer within 1 s"
        );
    }
    // Each hanging connection is closed by the server after the header-read timeout.
    for mut s in slow {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "a slow client was still connected after 30 s"
        );
    }
    app.stop().await;
}

/// Clients that pipeline requests and never read the answers hold a connection only until the
/// write timeout; meanwhile the ops listener, with its own cap, answers readiness.
#[tokio::test]
async fn clients_that_never_read_their_answers_are_cut_and_readiness_answers_on_the_ops_port() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.server.max_connections = 100;
    config.server.max_connections_per_ip = 0;
    config.server.write_timeout = Duration::from_secs(2);
    let app = App::start(&config, false).await;
    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops_base = format!("http://{}", ops.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let state = nightshift_api::state(&config, keys()).await.unwrap();
    tokio::spawn(nightshift_api::serve_ops(
        ops,
        Some(state),
        stop.clone().cancelled_owned(),
    ));
    let addr = app.base.trim_start_matches("http://").to_string();
    let pipelined = "GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);
    let mut hogs = Vec::new();
    for _ in 0..110 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(pipelined.as_bytes()).await.unwrap();
        hogs.push(s);
    }
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let ready = quick.get(format!("{ops_base}/health/ready")).send().await;
    assert_eq!(
        ready.map(|r| r.status().as_u16()).ok(),
        Some(200),
        "readiness on the ops port"
    );
    // The public port answers again once the write timeout cut the hogs (it never did before).
    wait_for("the public port to answer", Duration::from_secs(30), || async {
        let live = quick.get(format!("{}/health/live", app.base)).send().await.ok()?;
        (live.status() == 200).then_some(())
    })
    .await;
    // Every hog was closed by the server: reading it reaches the end (or a reset) instead of
    // waiting for answers that no longer come.
    for mut s in hogs {
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "a connection that never read was still open after 30 s");
    }
    stop.cancel();
    app.stop().await;
}

/// One address holds at most its share of the connections; a closed one gives its place back.
#[tokio::test]
async fn one_address_holds_at_most_its_share_of_the_connections() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.server.max_connections_per_ip = 5;
    let app = App::start(&config, false).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Headers begun, never finished: the connection stays (until the header timeout).
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        held.push(s);
    }
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    // Refused at once, not kept waiting: the server closes the sixth.
    let mut sixth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = sixth.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), sixth.read_to_end(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the sixth connection was served or kept: {read:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(held.pop());
    wait_for("a freed place", Duration::from_secs(10), || async {
        let live = quick.get(format!("{}/health/live", app.base)).send().await.ok()?;
        (live.status() == 200).then_some(())
    })
    .await;
    app.stop().await;
}
