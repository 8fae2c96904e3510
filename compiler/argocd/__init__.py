"""What Argo CD will do with a compiled tree: the Applications its ApplicationSets
generate (`applications`) and the changes the API server will not apply in place
(`immutable`). Pure functions on trees (`path -> bytes`), like `publishing.treediff`.
"""
