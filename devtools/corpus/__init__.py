"""The bundled sample corpus: ``python -m devtools.corpus.build`` writes ``sample/``; ``server`` serves it."""
