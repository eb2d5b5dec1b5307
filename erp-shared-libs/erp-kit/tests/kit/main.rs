//! Black-box tests of the service kit: a real probe service on port 0, called through
//! real tonic clients.

mod access;
mod balancing;
mod health_and_reflection;
mod helpers;
mod limits;
mod propagation;
mod shutdown;
