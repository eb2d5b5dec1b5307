//! The ERP mesh's API gateway (in progress): the route table built from every
//! `google.api.http` rule of the contracts. Transcoding, proxying, auth and limits follow.

pub mod routes;
