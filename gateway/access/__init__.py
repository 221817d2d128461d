"""The whole access policy, in one package.

Pure policy, no I/O: the permission catalog (`permissions`), the gate table (`gates`), tokens
(`tokens`) and the Grant (`grant`). On the database: who is calling (`authentication`, token to
Grant), the SELECTED closure as SQL predicates (`scope`, the one definition of scope) and each
integration's stored view of it, which every graph statement reads (`views`).
"""
