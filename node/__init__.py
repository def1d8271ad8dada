"""The node: the standalone engine that serves MilvusService (roles standalone, rw, ro)."""
