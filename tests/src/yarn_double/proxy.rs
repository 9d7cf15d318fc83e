//! The ResourceManager's web proxy (`/proxy/<application id>/...`), as Hadoop
//! 3.3.6's behaves in front of an AM (`shared/wire/hadoop-3.3.6/proxy/`, every
//! rule here checked against the `*.response` files there):
//! - GET, HEAD and PUT are forwarded to the tracking URL the AM registered,
//!   with only a whitelist of request headers: `Authorization` is dropped, so
//!   an AM that wants a bearer token answers 401;
//! - POST and DELETE are answered by the proxy itself: 405 with its HTML page;
//! - an application that is not running (no registered tracking URL) gets 404.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// The request headers the proxy passes on (`proxy/README.md`).
pub const FORWARDED_HEADERS: &[&str] = &[
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-charset",
    "content-type",
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
];

/// The proxy's own 405 page (`proxy/POST-jobs.response`).
pub fn method_not_allowed(method: &Method, uri: &str) -> Response {
    let body = format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n\
         <title>Error 405 HTTP method {method} is not supported by this URL</title>\n</head>\n\
         <body><h2>HTTP ERROR 405 HTTP method {method} is not supported by this URL</h2>\n<table>\n\
         <tr><th>URI:</th><td>{uri}</td></tr>\n<tr><th>STATUS:</th><td>405</td></tr>\n\
         <tr><th>MESSAGE:</th><td>HTTP method {method} is not supported by this URL</td></tr>\n\
         <tr><th>SERVLET:</th><td>proxy</td></tr>\n</table>\n\n</body>\n</html>\n"
    );
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/html;charset=iso-8859-1"));
    headers.insert("cache-control", HeaderValue::from_static("must-revalidate,no-cache,no-store"));
    (StatusCode::METHOD_NOT_ALLOWED, headers, body).into_response()
}

/// Forwards one request under `/proxy/<app>/` to `target` (the AM's tracking
/// URL) + `rest`, as the real proxy would, from the proxy host's address `from`.
pub async fn forward(
    from: std::net::IpAddr,
    method: Method,
    uri: &str,
    target: Option<&str>,
    rest: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST || method == Method::DELETE {
        return method_not_allowed(&method, uri);
    }
    let Some(target) = target else {
        return (StatusCode::NOT_FOUND, "the application is not running: it has no tracking URL to proxy")
            .into_response();
    };
    let url = format!("{}/{}", target.trim_end_matches('/'), rest.trim_start_matches('/'));
    let client = common::http::client_builder().unwrap().local_address(from).build().unwrap();
    let mut req = client.request(method, &url).body(body.to_vec());
    for (name, value) in headers {
        if FORWARDED_HEADERS.contains(&name.as_str()) {
            req = req.header(name.as_str(), value.as_bytes());
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = HeaderMap::new();
            if let Some(ct) =
                resp.headers().get("content-type").and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            {
                out.insert("content-type", ct);
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("the proxy cannot reach {url}: {e}")).into_response(),
    }
}
