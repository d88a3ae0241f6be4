//! The catalog `discover` returns, and the configured catalog `read` receives.

use crate::metrics::Chosen;
use crate::model::SyncMode;
use crate::protocol::Failure;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The discovered catalog, compact JSON, built from the stream registry; the metric fields of
/// insights streams follow the user's metric lists.
pub fn discovered(chosen: &Chosen) -> Result<String, Failure> {
    let mut streams = Vec::new();
    for def in crate::streams::REGISTRY {
        let schema = crate::packed::unpack(def.schema, &format!("schema of `{}`", def.name))?;
        let mut schema: Value = serde_json::from_str(&schema)
            .map_err(|e| Failure::system(format!("The built-in schema of `{}` is not valid JSON: {e}", def.name)))?;
        if let (Some((known, chosen)), Some(properties)) =
            (def.metric_fields.and_then(|fields| fields(chosen)), schema["properties"].as_object_mut())
        {
            properties.retain(|name, _| !known.contains(name) || chosen.contains(name));
            for name in chosen {
                if properties.contains_key(&name) {
                    continue;
                }
                let property = match name.contains("_by_") {
                    true => json!({"type": ["null", "object"], "additionalProperties": {"type": ["null", "integer"]}}),
                    false => json!({"type": ["null", "number"]}),
                };
                properties.insert(name, property);
            }
        }
        let mut stream = json!({"name": def.name, "json_schema": schema, "supported_sync_modes": def.sync_modes});
        if let Some(cursor) = def.cursor {
            stream["source_defined_cursor"] = json!(true);
            stream["default_cursor_field"] = json!([cursor]);
        }
        if !def.primary_key.is_empty() {
            stream["source_defined_primary_key"] = json!(def.primary_key.iter().map(|key| [key]).collect::<Vec<_>>());
        }
        stream["is_resumable"] = json!(def.resumable);
        streams.push(stream);
    }
    Ok(json!({ "streams": streams }).to_string())
}

/// One stream of a configured catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfiguredStream {
    pub name: String,
    pub sync_mode: SyncMode,
}

/// An Airbyte ConfiguredAirbyteCatalog, as far as a source reads it: the stream names and their
/// sync modes. Everything else (schemas, `destination_sync_mode`, `cursor_field` and
/// `primary_key` overrides) stays raw and is ignored, as the CDK ignores it.
#[derive(serde::Deserialize)]
struct ConfiguredCatalog {
    streams: Vec<Box<RawValue>>,
}

#[derive(serde::Deserialize)]
struct ConfiguredEntry {
    stream: Option<StreamName>,
    #[serde(default)]
    sync_mode: Option<SyncMode>,
}

#[derive(serde::Deserialize)]
struct StreamName {
    name: Option<String>,
}

/// Parses a configured catalog; every way it can be wrong is a `config_error` that says where.
pub fn parse_configured(text: &str) -> Result<Vec<ConfiguredStream>, Failure> {
    let text = crate::protocol::without_bom(text);
    let document: Value = serde_json::from_str(text)
        .map_err(|e| Failure::config(format!("The configured catalog is not valid JSON: {e}.")))?;
    let catalog: ConfiguredCatalog = serde_json::from_value(document)
        .map_err(|_| Failure::config("The configured catalog has no `streams` array."))?;
    let mut configured: Vec<ConfiguredStream> = Vec::with_capacity(catalog.streams.len());
    for (index, entry) in catalog.streams.iter().enumerate() {
        let entry: ConfiguredEntry = serde_json::from_str(entry.get()).map_err(|e| {
            let expected = "`stream.name` a string and `sync_mode` \"full_refresh\" or \"incremental\"";
            Failure::config(format!("Configured stream #{index} cannot be read ({e}); expected {expected}."))
        })?;
        let name = entry
            .stream
            .and_then(|stream| stream.name)
            .ok_or_else(|| Failure::config(format!("Configured stream #{index} has no `stream.name`.")))?;
        if configured.iter().any(|c| c.name == name) {
            return Err(Failure::config(format!("The configured catalog lists stream `{name}` twice.")));
        }
        configured.push(ConfiguredStream { name, sync_mode: entry.sync_mode.unwrap_or(SyncMode::FullRefresh) });
    }
    Ok(configured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FailureType;

    #[test]
    fn discovered_catalog_lists_all_streams_in_reference_order() {
        let catalog: Value = serde_json::from_str(&discovered(&Chosen::default()).expect("catalog")).expect("json");
        let names: Vec<&str> =
            catalog["streams"].as_array().expect("streams").iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(names, crate::streams::NAMES);
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
