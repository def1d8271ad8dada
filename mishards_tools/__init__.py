"""Client-side tools of the project: ``mishards import`` (bulk load with resume) and ``mishards bench``
(ann-benchmarks-style runs). They talk to any Milvus 1.1 endpoint through ``mishards_client`` only."""
