"""Generated Milvus 1.1 wire stubs; regenerate with scripts/gen_proto.py."""
