"""Message classes generated from proto/milvus.proto and proto/status.proto (client/gen_stubs.py)."""
