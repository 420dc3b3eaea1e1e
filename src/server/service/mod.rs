//! Services: the product's policy for multi-step operations, between the routes (parse,
//! answer) and storage. A service authorizes as the principal it is given — a client's
//! request or, for a cron, its creator — and knows no HTTP request types.

pub(in crate::server) mod a2a;
pub(in crate::server) mod assistants;
pub(in crate::server) mod crons;
pub(in crate::server) mod ending;
pub(in crate::server) mod mcp;
pub(in crate::server) mod runs;
pub(in crate::server) mod threads;
pub(in crate::server) mod ttl;
