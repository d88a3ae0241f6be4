//! The catalog `discover` returns, and the configured catalog `read` receives.

use crate::protocol::Failure;
use serde_json::Value;

const CATALOG_JSON: &str = include_str!("../resources/catalog.json");

/// The discovered catalog, compact JSON.
pub fn discovered() -> Result<String, Failure> {
    let catalog: Value = serde_json::from_str(CATALOG_JSON)
        .map_err(|e| Failure::system(format!("The built-in catalog is not valid JSON: {e}")))?;
    Ok(catalog.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    FullRefresh,
    Incremental,
}

/// One stream of a configured catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfiguredStream {
    pub name: String,
    pub sync_mode: SyncMode,
}

/// Parses an Airbyte ConfiguredAirbyteCatalog.
pub fn parse_configured(text: &str) -> Result<Vec<ConfiguredStream>, Failure> {
    let catalog: Value = serde_json::from_str(crate::protocol::without_bom(text))
        .map_err(|e| Failure::config(format!("The configured catalog is not valid JSON: {e}.")))?;
    let streams = catalog
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::config("The configured catalog has no `streams` array."))?;
    let mut configured = Vec::with_capacity(streams.len());
    for (index, entry) in streams.iter().enumerate() {
        let name = entry
            .pointer("/stream/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::config(format!("Configured stream #{index} has no `stream.name`.")))?;
        let sync_mode = match entry.get("sync_mode") {
            None | Some(Value::Null) => SyncMode::FullRefresh,
            Some(Value::String(mode)) if mode == "full_refresh" => SyncMode::FullRefresh,
            Some(Value::String(mode)) if mode == "incremental" => SyncMode::Incremental,
            Some(other) => {
                return Err(Failure::config(format!(
                    "Configured stream `{name}` has sync_mode {other}; expected \"full_refresh\" or \"incremental\"."
                )));
            }
        };
        if configured.iter().any(|c: &ConfiguredStream| c.name == name) {
            return Err(Failure::config(format!("The configured catalog lists stream `{name}` twice.")));
        }
        configured.push(ConfiguredStream { name: name.to_owned(), sync_mode });
    }
    Ok(configured)
}

/// Whether `name` supports `incremental` (only user_insights does).
pub fn supports_incremental(name: &str) -> bool {
    name == "user_insights"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FailureType;

    #[test]
    fn discovered_catalog_lists_all_streams_in_reference_order() {
        let catalog: Value = serde_json::from_str(&discovered().expect("catalog")).expect("json");
        let names: Vec<&str> =
            catalog["streams"].as_array().expect("streams").iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, crate::streams::ALL);
    }

    #[test]
    fn configured_catalog_errors_are_config_errors() {
        for text in [
            "{",
            "{}",
            r#"{"streams":[{"sync_mode":"full_refresh"}]}"#,
            r#"{"streams":[{"stream":{"name":"users"},"sync_mode":"sideways"}]}"#,
            r#"{"streams":[{"stream":{"name":"users"}},{"stream":{"name":"users"}}]}"#,
        ] {
            let err = parse_configured(text).expect_err(text);
            assert_eq!(err.failure_type, FailureType::ConfigError);
        }
        let ok = parse_configured(r#"{"streams":[{"stream":{"name":"user_insights"},"sync_mode":"incremental"}]}"#)
            .expect("ok");
        assert_eq!(ok, vec![ConfiguredStream { name: "user_insights".into(), sync_mode: SyncMode::Incremental }]);
    }
}
