//! The floor under rampart's proxy cost: the same HTTP stack with none of rampart's work. A
//! hyper HTTP/1 server that reads each request body and POSTs it, as it is, to one upstream
//! through a pooled client, then answers with the upstream's status and body. No routing, no parsing, no events, no metrics.
//!
//! `bench/vs-nginx.sh` starts it beside rampart (`BARE=1`) so the harness measures, in the same
//! interleaved run, what the HTTP stack alone costs per request next to nginx and rampart:
//!
//! `cargo run --release --example bare_proxy -- 127.0.0.1:18120 http://127.0.0.1:18080`
//!
//! Variants, to measure each layer's share: `BARE_SERVER=axum` routes through an axum `Router`
//! (as rampart does) instead of a bare `service_fn`; `BARE_CLIENT=hyper` calls the upstream
//! through hyper-util's pooled client (the one reqwest wraps) instead of reqwest;
//! `BARE_RT=current` runs a current-thread runtime instead of a multi-thread one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

type HyperClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<Bytes>,
>;

struct Upstream {
    client: reqwest::Client,
    hyper: Option<HyperClient>,
    url: reqwest::Url,
}

impl Upstream {
    async fn forward(&self, path: &str, body: Bytes) -> http::Response<Body> {
        if let Some(hyper) = &self.hyper {
            return self.forward_hyper(hyper, path, body).await;
        }
        let url = self.url.join(path.trim_start_matches('/')).expect("url");
        let sent = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return status(502, e.to_string()),
        };
        let code = resp.status();
        let ct = resp.headers().get(http::header::CONTENT_TYPE).cloned();
        let stream = ct
            .as_ref()
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let mut out = if stream {
            http::Response::new(Body::from_stream(resp.bytes_stream()))
        } else {
            match resp.bytes().await {
                Ok(b) => http::Response::new(Body::from(b)),
                Err(e) => return status(502, e.to_string()),
            }
        };
        *out.status_mut() = code;
        if let Some(ct) = ct {
            out.headers_mut().insert(http::header::CONTENT_TYPE, ct);
        }
        out
    }

    async fn forward_hyper(
        &self,
        client: &HyperClient,
        path: &str,
        body: Bytes,
    ) -> http::Response<Body> {
        let url = self.url.join(path.trim_start_matches('/')).expect("url");
        let req = http::Request::post(url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(body))
            .expect("request");
        match client.request(req).await {
            Ok(resp) => resp.map(Body::new),
            Err(e) => status(502, e.to_string()),
        }
    }
}

fn status(code: u16, msg: String) -> http::Response<Body> {
    let mut r = http::Response::new(Body::from(msg));
    *r.status_mut() = http::StatusCode::from_u16(code).expect("status");
    r
}

async fn handle(up: Arc<Upstream>, req: http::Request<Body>) -> http::Response<Body> {
    let path = req.uri().path().to_string();
    match req.into_body().collect().await {
        Ok(b) => up.forward(&path, b.to_bytes()).await,
        Err(e) => status(400, e.to_string()),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18120".into());
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:18080".into());
    let base = if base.ends_with('/') {
        base
    } else {
        format!("{base}/")
    };
    let up = Arc::new(Upstream {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .expect("client"),
        hyper: std::env::var("BARE_CLIENT")
            .is_ok_and(|v| v == "hyper")
            .then(|| {
                let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
                http.set_nodelay(true);
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(1024)
                    .build(http)
            }),
        url: reqwest::Url::parse(&base).expect("upstream url"),
    });
    let axum = std::env::var("BARE_SERVER").is_ok_and(|v| v == "axum");
    let mut rt = if std::env::var("BARE_RT").is_ok_and(|v| v == "current") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    rt.enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
            let router = axum::Router::new().fallback({
                let up = up.clone();
                move |req: http::Request<Body>| handle(up.clone(), req)
            });
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (up, router) = (up.clone(), router.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: http::Request<Incoming>| {
                            let (up, router) = (up.clone(), router.clone());
                            async move {
                                let req = req.map(Body::new);
                                let resp = if axum {
                                    match tower::ServiceExt::oneshot(router, req).await {
                                        Ok(r) => r,
                                        Err(never) => match never {},
                                    }
                                } else {
                                    handle(up, req).await
                                };
                                Ok::<_, Infallible>(resp)
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
}
