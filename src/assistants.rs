//! Assistants as the server keeps them. Wire shapes live in `server/routes/assistants.rs`.

use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Namespace of system assistant ids: `assistant_id = uuid5(NAMESPACE, graph_id)`.
const SYSTEM_ASSISTANT_NAMESPACE: Uuid = Uuid::from_u128(0x6ba7_b821_9dad_11d1_80b4_00c0_4fd4_30c8);

/// An assistant: a graph plus its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Assistant {
    pub assistant_id: Uuid,
    pub graph_id: String,
    pub name: String,
    pub description: Option<String>,
    pub config: Map<String, Value>,
    pub context: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub version: i64,
    /// Microseconds since the epoch.
    pub created_at: i64,
    /// Microseconds since the epoch.
    pub updated_at: i64,
}

impl Assistant {
    /// The assistant registered for each graph of `langgraph.json` at start-up.
    pub fn system(graph_id: &str, compiled_name: &str, description: Option<String>, config: Map<String, Value>, now: i64) -> Self {
        let name = if compiled_name == "LangGraph" { graph_id } else { compiled_name };
        let metadata = match json!({"created_by": "system"}) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self {
            assistant_id: system_assistant_id(graph_id),
            graph_id: graph_id.to_string(),
            name: name.to_string(),
            description,
            config,
            context: Map::new(),
            metadata,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// `uuid5(6ba7b821-9dad-11d1-80b4-00c04fd430c8, graph_id)`.
pub fn system_assistant_id(graph_id: &str) -> Uuid {
    Uuid::new_v5(&SYSTEM_ASSISTANT_NAMESPACE, graph_id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_ids_match_the_reference() {
        assert_eq!(system_assistant_id("agent").to_string(), "fe096781-5601-53d2-b2f6-0d3403f7e9ca");
    }
}
