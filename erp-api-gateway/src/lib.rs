//! The ERP mesh's API gateway: the route table built from every
//! `google.api.http` rule of the contracts, and the JSON ↔ protobuf transcoder that turns
//! an HTTP request into its request message and a response message into JSON, and the HTTP
//! front that serves the routes by calling the upstream units after edge access checks
//! and rate limits, with CORS, request ids, an access log and readiness from the upstreams'
//! health; gRPC and gRPC-Web calls pass through to the owning unit after the same checks;
//! `GET /openapi.json` describes every route; behind trusted proxies the client's address
//! comes from `X-Forwarded-For`.

pub mod codec;
pub mod config;
pub mod errors;
pub mod http_front;
pub mod limits;
pub mod openapi;
pub mod proxies;
pub mod routes;
pub mod transcode;
