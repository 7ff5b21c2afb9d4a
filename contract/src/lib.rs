//! # switchboard-contract
//!
//! The service's contract, rendered from the registry's [`ServiceContract`]
//! (`switchboard_core::contract`): the AsyncAPI 3.0 document ([`asyncapi`]) and a typed
//! TypeScript client module ([`typescript`]), both with what every service's messages
//! have (room history stamps and request ids: [`protocol`]).

pub mod asyncapi;
pub mod protocol;
pub mod typescript;

pub use switchboard_core::contract::ServiceContract;
