"""The Milvus 1.1 RESTful API (its built-in web server, port 19121), shared by the node and the proxy.

The HTTP layer only translates: JSON bodies and query strings become the same protobuf requests the gRPC
edge takes, a :class:`~coordinator.rest.backend.Backend` serves them (the node's servicer in-process, or the
proxy's forwarder), and the replies become Milvus 1.1's JSON. Validation, the error map, the engine and the
fan-out are those of the gRPC path; nothing here decides a request's outcome on its own except the shape of
its JSON.
"""
