"""Helpers shared by the test suite: polling, free ports and private database/etcd servers."""
