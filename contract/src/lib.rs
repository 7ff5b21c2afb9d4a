//! # switchboard-contract
//!
//! The service's contract, rendered from the registry's [`ServiceContract`]
//! (`switchboard_core::contract`): the AsyncAPI 3.0 document ([`asyncapi`]) and a typed
//! TypeScript client module ([`typescript`]), both with the protocol every service has
//! (room history stamps, `resume`, request ids: [`protocol`]).

pub mod asyncapi;
pub mod protocol;
pub mod typescript;

pub use switchboard_core::contract::ServiceContract;
