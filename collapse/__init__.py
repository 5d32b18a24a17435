"""collapse: model-collapse simulation studies (README.md; the package's rooms: docs/package-layout.md).

Tensor names carry their shape as a suffix of capital letters, one letter per axis (`tokens_RNT`), with one
meaning for the whole package:

    R  replicates                         G  generations
    N  sequences (rows of a corpus)       M  a second set of rows: candidates, test rows
    T  positions (tokens of a sequence)   P  prompt positions
    V  vocabulary                         B  batch rows
    D  width: a model's or an embedding's, a Gaussian's dimension

Every other letter is a module's own and its docstring says what it means there: the transformer's A heads,
H head width, S key positions, X = B · A (collapse.model, collapse.attention), training's I steps of a chunk
(collapse.train), a grammar's S states (collapse.data.grammar), a mixture's K components, and so on.
"""
