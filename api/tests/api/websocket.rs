//! GraphQL over WebSocket (`graphql-transport-ws`, the protocol of the `graphql-ws`
//! library) on `/graphql`, authenticated in `connection_init`.

use crate::both;
use crate::helpers::TestApp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The upgrade request of a `graphql-transport-ws` connection to `app`.
pub fn request(app: &TestApp) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    req
}

pub async fn connect(app: &TestApp) -> Ws {
    let (ws, resp) = tokio_tungstenite::connect_async(request(app))
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "graphql-transport-ws"
    );
    ws
}

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .unwrap();
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(f) => {
                return json!({ "type": "__close", "code": f.map(|f| u16::from(f.code)) });
            }
            _ => continue,
        }
    }
}

both!(
    queries_over_graphql_transport_ws,
    |app: TestApp| async move {
        let novel = app.novel("Over the wire").await;
        let mut ws = connect(&app).await;
        ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", app.admin_key) } }).to_string(),
    ))
    .await
    .unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
        ws.send(Message::text(
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "query($n: ID!) { novel(id: $n) { title } viewer { role } }", "variables": { "n": novel } } }).to_string(),
    ))
    .await
    .unwrap();
        let next = next_json(&mut ws).await;
        assert_eq!(next["type"], "next", "{next}");
        assert_eq!(next["payload"]["data"]["novel"]["title"], "Over the wire");
        assert_eq!(next["payload"]["data"]["viewer"]["role"], "ADMIN");
        assert_eq!(next_json(&mut ws).await["type"], "complete");

        // A field error over the socket carries the same stable code.
        ws.send(Message::text(
        json!({ "id": "2", "type": "subscribe", "payload": { "query": "{ novel(id: \"bogus\") { title } }" } }).to_string(),
    ))
    .await
    .unwrap();
        let next = next_json(&mut ws).await;
        assert_eq!(
            next["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{next}"
        );
    }
);

both!(
    websocket_rejects_bad_credentials_and_bad_messages,
    |app: TestApp| async move {
        let mut ws = connect(&app).await;
        ws.send(Message::text(
            json!({ "type": "connection_init", "payload": { "Authorization": "Bearer znk_nope" } })
                .to_string(),
        ))
        .await
        .unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["type"], "__close", "{msg}");
        assert_eq!(msg["code"], 4403, "{msg}");

        let mut ws = connect(&app).await;
        ws.send(Message::text("this is not json")).await.unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["type"], "__close", "{msg}");
        assert_eq!(msg["code"], 4400, "{msg}");

        // Without a credential the public endpoint refuses the connection.
        let mut ws = connect(&app).await;
        ws.send(Message::text(
            json!({ "type": "connection_init" }).to_string(),
        ))
        .await
        .unwrap();
        let msg = next_json(&mut ws).await;
        assert_eq!(
            (msg["type"].as_str(), msg["code"].as_u64()),
            (Some("__close"), Some(4403)),
            "{msg}"
        );

        // The server is still up.
        let r = app.client.get(app.url("/health")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
);
