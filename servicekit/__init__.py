"""The runtime every service shares: settings, database and unit of work, transactional outbox
and idempotent inbox over NATS JetStream, gRPC server and client helpers, auth context, errors,
telemetry and logs. Written once here; services never copy it."""
