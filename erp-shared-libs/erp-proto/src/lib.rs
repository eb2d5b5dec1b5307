//! The ERP mesh contracts as Rust: prost messages and tonic clients/servers generated
//! from `proto/`, the encoded descriptor set, and a typed view of every method's access
//! rule and HTTP bindings (`Contracts`), read by the service kit and the gateway.

mod contracts;

pub use contracts::{
    AccessRule, ContractError, Contracts, EventContract, HttpBinding, HttpMethod, MethodContract,
    Requirement,
};

/// The encoded `google.protobuf.FileDescriptorSet` of every contract, custom options
/// included, without source info (what services decode and serve by reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/erp_descriptor.bin"));

/// The same set with source info: every proto comment, for generated documentation
/// (the gateway's OpenAPI descriptions).
pub const DOCUMENTED_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/erp_descriptor_documented.bin"));

/// Generated code of the `erp.*` packages, one module per package and major version.
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used, missing_docs)]
#[allow(
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links
)]
pub mod erp {
    /// Shared value types and the access option.
    pub mod common {
        /// `erp.common.v1`
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/erp.common.v1.rs"));
        }
    }
    /// Identity: tenants, users, roles, sessions, keys.
    pub mod auth {
        /// `erp.auth.v1`
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/erp.auth.v1.rs"));
        }
    }
    /// Human resources.
    pub mod hrm {
        /// `erp.hrm.v1`
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/erp.hrm.v1.rs"));
        }
    }
    /// Customer relationships.
    pub mod crm {
        /// `erp.crm.v1`
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/erp.crm.v1.rs"));
        }
    }
    /// Finance.
    pub mod finance {
        /// `erp.finance.v1`
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/erp.finance.v1.rs"));
        }
    }
    /// The event envelope and event payloads.
    pub mod events {
        /// `erp.events.v1`
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/erp.events.v1.rs"));
        }
    }
}

/// Generated code of our minimal `google.api` HTTP annotation.
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used, missing_docs)]
#[allow(
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links
)]
pub mod google {
    /// `google.api`
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }
}
