//! One integration test binary (faster linking): a `mod` per area. Every test starts the real
//! `graphward` binary and talks to it like a user or client would, except `inprocess`, which
//! drives the router of one in-process server state.

mod common;
mod http;
mod inprocess;
mod layers;
mod routes;
mod startup;
