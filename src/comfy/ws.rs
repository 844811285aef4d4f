//! The websocket (`/ws?clientId=…`): a live feed of progress, and nothing more.
//!
//! It is deliberately *not* the source of truth. ComfyUI drops events for a client ID that has no
//! live socket (no replay), and a second socket with the same client ID silently steals the first
//! one's events — and when the older one closes, the newer one goes deaf too (ComfyUI#16010).
//! With a stable client ID that is exactly what two concurrent comfyctl runs do. So this module
//! only forwards parsed text frames to a channel and reports when the socket ends; the caller
//! keeps polling `/history` as a backstop.

use super::http::Client;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// What the socket task reports.
#[derive(Debug)]
pub enum WsEvent {
    /// A JSON text frame (`{"type": …, "data": …}`).
    Msg(Value),
    /// The socket ended (closed, errored); the reason is for `-v`.
    Closed(String),
}

/// Opens the websocket and spawns a task that forwards its JSON messages. Binary frames (preview
/// images) are skipped. The task pings every 20 s so proxies and NAT keep an idle socket open
/// during long model loads (ComfyUI itself never pings), and ends when the receiver is dropped —
/// which closes the socket.
pub async fn connect(
    client: &Client,
    client_id: &str,
    timeout: Duration,
) -> Result<mpsc::Receiver<WsEvent>, String> {
    let url = client.server.ws_url(client_id);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    for (k, v) in &client.server.headers {
        req.headers_mut().insert(k.clone(), v.clone());
    }
    let (stream, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req))
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
        .map_err(|e| client.scrub(&e.to_string()))?;
    let (mut sink, mut source) = stream.split();
    let (tx, rx) = mpsc::channel(256);
    // ComfyUI registers the socket under the client ID only after the handshake, then sends a
    // `status` with the `sid`. Waiting for that first message means the prompt we queue next
    // cannot run before the server knows where to send its events.
    let first = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match source.next().await {
                Some(Ok(Message::Text(t))) => return serde_json::from_str::<Value>(&t).ok(),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await;
    if let Ok(Some(v)) = first {
        let _ = tx.send(WsEvent::Msg(v)).await;
    }
    tokio::spawn(async move {
        let mut ping = tokio::time::interval(Duration::from_secs(20));
        ping.tick().await;
        let reason = loop {
            tokio::select! {
                msg = source.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if let Ok(v) = serde_json::from_str::<Value>(&t) {
                            if tx.send(WsEvent::Msg(v)).await.is_err() {
                                break String::new();
                            }
                        }
                    }
                    Some(Ok(Message::Close(f))) => {
                        break format!("closed by the server{}", f.map(|f| format!(" ({})", f.reason)).unwrap_or_default());
                    }
                    Some(Ok(_)) => {} // binary previews, pings, pongs
                    Some(Err(e)) => break e.to_string(),
                    None => break "connection ended".to_string(),
                },
                _ = ping.tick() => {
                    if let Err(e) = sink.send(Message::Ping(Vec::new())).await {
                        break e.to_string();
                    }
                }
                _ = tx.closed() => break String::new(),
            }
        };
        let _ = sink.close().await;
        if !reason.is_empty() {
            let _ = tx.send(WsEvent::Closed(reason)).await;
        }
    });
    Ok(rx)
}
