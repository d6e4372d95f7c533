//! Health, readiness, metrics and request ids.

use crate::both;
use serde_json::json;

both!(
    health_ready_metrics_and_request_ids,
    |app: crate::helpers::TestApp| async move {
        let r = app.client.get(app.url("/health")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = app.client.get(app.url("/ready")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["checks"]["database"], "ok");

        let r = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "query": "query Shelf { novels { edges { cursor } } }", "operationName": "Shelf" }))
        .send()
        .await
        .unwrap();
        assert!(
            r.headers().get("x-request-id").is_some(),
            "every response carries a request id"
        );
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/graphql-response+json"
        );
        app.err("{ novel(id: \"x\") { id } }", json!({})).await;

        let text = app
            .client
            .get(format!("http://{}/metrics", app.metrics_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for needle in [
            "znovel_graphql_operations_total{operation=\"Shelf\"} 1",
            "znovel_graphql_operation_duration_seconds_bucket{operation=\"Shelf\"",
            "znovel_graphql_errors_total{code=\"BAD_USER_INPUT\"}",
            "znovel_http_requests_total{method=\"GET\",route=\"/ready\",status=\"200\"} 1",
            "znovel_http_request_duration_seconds_bucket{method=\"POST\",route=\"/graphql\"",
            "znovel_db_pool_connections{state=\"max\"} 8",
        ] {
            assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
        }
        // The metrics port is separate: the API port does not serve /metrics.
        let r = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
);
