// The `airbyte:source/sink` import for jco: each call becomes one Airbyte JSON line on stdout, in
// the wasmtime host's format (record data and states pass through as the component wrote them).
const out = (line) => process.stdout.write(line + '\n');
const text = JSON.stringify;
const upper = (value) => value.toUpperCase();

export function recordEmitted(stream, data) {
  out(`{"type":"RECORD","record":{"stream":${text(stream)},"data":${data},"emitted_at":${Date.now()}}}`);
}

export function state(stream, streamState, recordCount) {
  const descriptor = `{"stream_descriptor":{"name":${text(stream)}},"stream_state":${streamState}}`;
  out(`{"type":"STATE","state":{"type":"STREAM","stream":${descriptor},"sourceStats":{"recordCount":${Number(recordCount)}.0}}}`);
}

export function log(level, message) {
  out(text({ type: 'LOG', log: { level: upper(level), message } }));
}

export function reportStatus(stream, status, rateLimitedUntil) {
  const streamStatus = { stream_descriptor: { name: stream }, status: upper(status) };
  if (rateLimitedUntil !== undefined) {
    streamStatus.reasons = [{ type: 'RATE_LIMITED', rate_limited: { quota_reset: Number(rateLimitedUntil) } }];
  }
  out(text({ type: 'TRACE', trace: { type: 'STREAM_STATUS', emitted_at: Date.now(), stream_status: streamStatus } }));
}

export function error(stream, failure) {
  const body = { message: failure.message, failure_type: failure.failureType.replace('-', '_') };
  if (failure.internalMessage !== undefined) body.internal_message = failure.internalMessage;
  if (stream !== undefined) body.stream_descriptor = { name: stream };
  out(text({ type: 'TRACE', trace: { type: 'ERROR', emitted_at: Date.now(), error: body } }));
}

export function configUpdated(config) {
  out(`{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG","emitted_at":${Date.now()},"connectorConfig":{"config":${config}}}}`);
}
