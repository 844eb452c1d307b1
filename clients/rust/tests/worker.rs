//! The client against a running worker: `PODIUM_URL` (e.g. tests/e2e/clients.test.mjs
//! starts one under workerd and runs this with it). Without `PODIUM_URL` the
//! test says so and passes, unless `PODIUM_REQUIRE_WORKER=1` (as the e2e run sets).

use std::time::{Duration, Instant};

use podium_client::{
    blocking, verify_webhook, BoardSettings, Client, DeliveryStatus, Error, Event, HookBody, HookEvent, LiveKind,
    LiveOptions, ReadQuery, RouteTarget, WebhookEvent, Window,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const SECRET: &str = "rust-client-secret-0123456789";

fn env() -> Option<(String, String, String)> {
    let url = std::env::var("PODIUM_URL").ok()?;
    let ingest = std::env::var("PODIUM_INGEST_KEY").unwrap_or_else(|_| "dev-ingest-key".into());
    let admin = std::env::var("PODIUM_ADMIN_KEY").unwrap_or_else(|_| "dev-admin-key".into());
    Some((url, ingest, admin))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Polls `f` until it yields `Some`, or fails after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A webhook receiver on 127.0.0.1: sends (signature header, raw body) of each POST.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then Content-Length bytes of body.
                let (head_end, len) = loop {
                    let Ok(n) = sock.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    let Ok(n) = sock.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let sig = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("podium-signature").then(|| v.trim().to_string())
                    })
                    .unwrap_or_default();
                let _ = tx.send((sig, buf[head_end..head_end + len].to_vec()));
                let _ = sock.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
            });
        }
    });
    (origin, rx)
}

#[tokio::test]
async fn client_against_the_worker() {
    let Some((url, ingest, admin)) = env() else {
        assert!(std::env::var("PODIUM_REQUIRE_WORKER").is_err(), "PODIUM_URL is required");
        eprintln!("PODIUM_URL not set: skipped (tests/e2e/clients.test.mjs runs this against a worker)");
        return;
    };
    let podium = Client::builder(&url).ingest_key(&ingest).admin_key(&admin).build().expect("client");
    assert!(podium.health().await.expect("health").ok);

    // Boards, routes, ingest with ids: a resent event counts once.
    let board = unique("rs");
    let event_type = format!("{board}.like");
    let settings = BoardSettings { title: Some("Rust client".into()), windows: Some(vec![Window::All, Window::Day]), ..Default::default() };
    let b = podium.put_board(&board, &settings).await.expect("put board");
    assert_eq!(b.windows, vec![Window::All, Window::Day]);
    podium.put_route(&event_type, &[RouteTarget { board: board.clone(), value: None }]).await.expect("put route");
    assert_eq!(podium.route(&event_type).await.expect("route").targets.len(), 1);

    // The live stream first, so the update that follows is seen.
    let mut live = podium.live(&board, LiveOptions { limit: Some(5), ..Default::default() });
    let snap = tokio::time::timeout(Duration::from_secs(10), live.next()).await.expect("snapshot in time").expect("snapshot");
    assert_eq!((snap.kind, snap.total), (LiveKind::Snapshot, 0));

    let alice = Event::new(&event_type, "alice").value(3.0).id(format!("{board}-1"));
    let a = podium.ingest(&[alice.clone(), Event::new(&event_type, "bob")]).await.expect("ingest");
    assert_eq!(a.accepted, 2);
    assert_eq!(a.ids[0], format!("{board}-1"));
    assert_eq!(a.ids[1].len(), 36, "the client gave bob's event a UUID");
    podium.ingest(&[alice]).await.expect("resend");
    let applied = podium.ingest_and_wait(&[Event::new(&event_type, "carol").value(2.0)]).await.expect("wait=applied");
    assert!(applied.applied);

    let until = Instant::now() + Duration::from_secs(10);
    let update = loop {
        assert!(Instant::now() < until, "timed out waiting for a live update with alice");
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(5), live.next()).await else { continue };
        if m.kind == LiveKind::Update && m.entries.first().map(|e| e.member.as_str()) == Some("alice") {
            break m;
        }
    };
    assert_eq!(update.entries[0].score, 3.0);

    let top = podium.top(&board, &ReadQuery { limit: Some(3), ..Default::default() }).await.expect("top");
    let got: Vec<(&str, f64)> = top.entries.iter().map(|e| (e.member.as_str(), e.score)).collect();
    assert_eq!(got, vec![("alice", 3.0), ("carol", 2.0), ("bob", 1.0)], "alice counted once");
    let s = podium.member(&board, "alice", &ReadQuery::window(Window::Day)).await.expect("member");
    assert_eq!(s.rank, 1);
    match podium.member(&board, "nobody", &ReadQuery::default()).await {
        Err(Error::Api(e)) => assert_eq!((e.status, e.code.as_str()), (404, "member_not_found")),
        other => panic!("expected a 404, got {other:?}"),
    }
    assert_eq!(podium.lookup(&board, &["bob"], &ReadQuery::default()).await.expect("lookup").entries.len(), 1);
    let page = podium.list_boards(Some(10), None, Some(&board)).await.expect("list");
    assert_eq!(page.boards.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), vec![board.as_str()]);
    assert_eq!(podium.new_season(&board, None).await.expect("season").season, 2);
    assert!(podium.dead_letters(Some(5), None).await.expect("dead letters").dead_letters.len() <= 5);

    // Hooks: CRUD and a delivery verified with the hook's secret.
    let (origin, mut rx) = receiver().await;
    let hook_board = unique("rs-hook");
    let name = unique("rh");
    let hook = HookBody {
        url: format!("{origin}/hook"),
        events: vec![HookEvent::TopChanged],
        boards: Some(vec![hook_board.clone()]),
        top: Some(3),
        secret: Some(SECRET.into()),
    };
    assert_eq!(podium.put_hook(&name, &hook).await.expect("put hook").top, 3);
    assert!(podium.hooks().await.expect("hooks").hooks.iter().any(|h| h.name == name));
    // A board hears of a new hook within 5 s: send until a delivery comes.
    let until = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let (sig, body) = loop {
        assert!(Instant::now() < until, "timed out waiting for a webhook delivery");
        n += 1;
        let _ = podium.ingest(&[Event::new("like", format!("m{n}")).board(hook_board.as_str()).value(n as f64)]).await;
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            break d;
        }
    };
    let ev = verify_webhook(SECRET.as_bytes(), &sig, &body, Duration::from_secs(300)).expect("signature verifies");
    let WebhookEvent::TopChanged { common, entered, .. } = &ev else { panic!("expected top_changed, got {ev:?}") };
    assert_eq!(common.board, hook_board);
    assert!(!entered.is_empty());
    assert!(verify_webhook(b"another-secret-0123456", &sig, &body, Duration::from_secs(300)).is_err());
    let id = common.id.clone();
    wait_for("the delivery logged", Duration::from_secs(10), || async {
        let d = podium.deliveries(&name, Some(50)).await.ok()?;
        d.deliveries.iter().any(|d| d.id == id && d.status == DeliveryStatus::Delivered).then_some(())
    })
    .await;
    podium.delete_hook(&name).await.expect("delete hook");
    assert_eq!(podium.hook(&name).await.err().and_then(|e| e.status()), Some(404));

    // Deleting the board ends its live stream.
    podium.delete_board(&board).await.expect("delete board");
    let until = Instant::now() + Duration::from_secs(10);
    let end = loop {
        assert!(Instant::now() < until, "timed out waiting for the live stream to end");
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), live.next()).await {
            break e;
        }
    };
    assert!(matches!(end, Error::BoardRemoved), "{end:?}");
    podium.delete_route(&event_type).await.expect("delete route");

    // The blocking form (tools/load uses it) from a plain thread.
    let url2 = url.clone();
    let health = std::thread::spawn(move || {
        let c = blocking::Client::new(Client::builder(url2).build().expect("client")).expect("runtime");
        c.call(|p| p.health())
    })
    .join()
    .expect("thread");
    assert!(health.expect("blocking health").ok);
}
