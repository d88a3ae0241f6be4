"""Checks with code nobody here wrote: the official Airbyte protocol models (pydantic) for every
message, and Draft 7 JSON Schema (jsonschema, with its date-time format checker) for every record.

Used by the standard suite and by the transcript check of the Rust e2e tests."""

from datetime import datetime

import jsonschema
from airbyte_protocol.models import AirbyteMessage


def protocol_error(message: dict) -> str | None:
    """Why `message` is not a valid Airbyte message, or None."""
    try:
        AirbyteMessage.parse_obj(message)
    except Exception as error:  # pydantic's ValidationError, or a TypeError for a non-object
        return str(error).replace("\n", " ")
    return None


def _airbyte_type(validator, airbyte_type, instance, schema):
    """Airbyte's `airbyte_type` keyword: a timestamp must (or must not) carry an offset."""
    if not isinstance(instance, str) or not airbyte_type.startswith("timestamp_"):
        return
    try:
        parsed = datetime.fromisoformat(instance)
    except ValueError:
        yield jsonschema.ValidationError(f"{instance!r} is not an ISO 8601 timestamp ({airbyte_type})")
        return
    if (parsed.tzinfo is not None) != (airbyte_type == "timestamp_with_timezone"):
        yield jsonschema.ValidationError(f"{instance!r} does not match airbyte_type {airbyte_type}")


AirbyteSchemaValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"airbyte_type": _airbyte_type}
)


class RecordChecker:
    """Validates records against the schemas, keys and cursors of a discovered catalog."""

    def __init__(self, catalog: dict):
        self.streams = {stream["name"]: stream for stream in catalog["streams"]}
        self.validators = {}
        for name, stream in self.streams.items():
            AirbyteSchemaValidator.check_schema(stream["json_schema"])
            self.validators[name] = AirbyteSchemaValidator(
                stream["json_schema"], format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
            )

    def key_paths(self, stream: str) -> list:
        entry = self.streams[stream]
        return [*entry.get("source_defined_primary_key", []), *([entry["default_cursor_field"]] if entry.get("default_cursor_field") else [])]

    def errors(self, stream: str, data: dict) -> list[str]:
        if stream not in self.validators:
            return [f"stream {stream!r} is not in the discovered catalog"]
        found = [f"{'/'.join(map(str, e.absolute_path)) or '(record)'}: {e.message}" for e in self.validators[stream].iter_errors(data)]
        for path in self.key_paths(stream):
            value = data
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                found.append(f"key or cursor {'.'.join(path)} is missing or null")
        return found

    def schema_declares_keys(self) -> list[str]:
        """Keys and cursors that the stream's own schema does not declare."""
        missing = []
        for name in self.streams:
            for path in self.key_paths(name):
                node = self.streams[name]["json_schema"]
                for part in path:
                    node = node.get("properties", {}).get(part)
                    if node is None:
                        missing.append(f"{name}: {'.'.join(path)}")
                        break
        return missing
