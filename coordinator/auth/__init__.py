"""Identity and roles: who a call comes from (a token, the anonymous role, a cluster peer) and what it may do.

* :mod:`coordinator.auth.tokens`: the token format, its hash and the ``authorization`` header.
* :mod:`coordinator.auth.model`: roles, users, grants, identities and the pure :func:`authorize` decision.
* :mod:`coordinator.auth.classes`: every MilvusService RPC (and ``Cmd`` command) in a class: read, write, DDL,
  admin, or open.
* :mod:`coordinator.auth.store`: the users held in the catalog, as a periodically refreshed snapshot.
* :mod:`coordinator.auth.guard`: the check at a process's edge, the refusal and the audit line.
"""
