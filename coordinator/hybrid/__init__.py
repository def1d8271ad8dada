"""Hybrid collections: scalar fields beside one vector field, and vector searches filtered by them.

Pure modules shared by node, proxy and the client helper (no I/O, no engine state):

- ``types``: the wire enums (``DataType``, ``CompareOp``, ``Occur``) and each scalar type's storage dtype;
- ``schema``: ``FieldSchema`` / ``HybridSchema``, from and to the protobuf ``Mapping`` and catalog JSON;
- ``attrs``: ``HEntity.attr_records`` decoded into typed numpy columns (checked exactly) and packed back;
- ``vectors``: query and insert vectors (``RowRecord`` or JSON lists) into numpy, with the 1.1 checks;
- ``tree``: the canonical query tree (``Term``, ``Range``, ``Bool``, ``VectorClause``, ``HybridQuery``);
- ``values``: typed literals of terms and ranges, checked against their field;
- ``from_wire``: ``GeneralQuery`` / ``HSearchParam`` to the tree and the tree back to ``GeneralQuery``;
- ``dsl``: the JSON DSL (Milvus 0.11 dialect) to the same tree;
- ``clauses``: the checks both builders share (fields, the vector clause, depth); ``jsonvalue``: strict JSON;
- ``evaluate``: the scalar part of a tree over numpy columns into a boolean mask, selectivity helpers.

Errors are ``coordinator.errors`` classes carrying Milvus 1.1 codes. See docs/DESIGN.md 8.12.
"""
