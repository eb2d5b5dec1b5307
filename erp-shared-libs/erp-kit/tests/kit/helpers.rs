use erp_kit::config::ServerConfig;
use erp_testkit::{
    TestKeys,
    probe::{ProbeServer, spawn_probe},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Request, metadata::MetadataValue};

/// Port 0 for both listeners, everything else default.
pub fn server_config() -> ServerConfig {
    ServerConfig::default()
}

/// A probe trusting `keys`.
pub async fn probe_with(keys: &TestKeys, config: ServerConfig) -> ProbeServer {
    spawn_probe(config, Some(keys.verifier()))
        .await
        .expect("probe starts")
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

pub use erp_testkit::wait::eventually;

/// A plain HTTP/1.1 GET against the admin endpoint: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A connected plain channel.
pub async fn channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("connects")
}
