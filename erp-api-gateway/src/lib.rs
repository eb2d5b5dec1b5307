//! The ERP mesh's API gateway (in progress): the route table built from every
//! `google.api.http` rule of the contracts, and the JSON ↔ protobuf transcoder that turns
//! an HTTP request into its request message and a response message into JSON. The HTTP
//! server, upstream calls, auth and limits follow.

pub mod errors;
pub mod routes;
pub mod transcode;
