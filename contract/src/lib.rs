//! # switchboard-contract
//!
//! The service's contract, rendered from the registry's [`ServiceContract`]
//! (`switchboard_core::contract`): the AsyncAPI 3.0 document ([`asyncapi`]) and a typed
//! TypeScript client module ([`typescript`]).

pub mod asyncapi;
pub mod typescript;

pub use switchboard_core::contract::ServiceContract;
