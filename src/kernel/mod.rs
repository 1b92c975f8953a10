//! Leaf helpers every layer may use; this module imports nothing of the crate but
//! [`crate::error`]: injected time and random ids ([`clock`]), hashing ([`hash`]), durable
//! file writes ([`fs`]), checks and clipping of untrusted text ([`text`]), and the typed live
//! events behind `WS /ws/events` ([`events`]).

pub mod clock;
pub mod events;
pub mod fs;
pub mod hash;
pub mod text;
