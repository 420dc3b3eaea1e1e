//! One file per resource: its router, handlers and wire shapes.

pub(super) mod assistants;
pub(super) mod system;
