//! One integration test binary (faster linking): a `mod` per area. Every test starts the real
//! `graphward` binary and talks to it like a user or client would.

mod common;
mod http;
mod layers;
mod routes;
mod startup;
