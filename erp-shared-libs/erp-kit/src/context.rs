//! The context of the call being handled (request id, deadline, caller's token), kept in
//! a task-local by the server layer so outgoing calls can propagate it without plumbing.

use std::time::Instant;

use crate::auth::AuthContext;

/// What the server knows about the call the current task is handling.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (`x-request-id`), generated when the caller sent none.
    pub request_id: String,
    /// When the caller stops waiting: from `grpc-timeout` or the server's request timeout.
    pub deadline: Option<Instant>,
    /// The verified caller (absent on public methods): its token is forwarded on calls to
    /// other services and its user is the actor of events the call causes.
    pub caller: Option<AuthContext>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The context of the call this task handles, if it handles one.
///
/// Tasks spawned from a handler do not inherit it; pass it on with [`scope`].
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `future` with `context` as the current request context.
pub async fn scope<F: Future>(context: RequestContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}
