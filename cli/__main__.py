"""``python -m cli``: the same as the ``storywire`` command."""

from cli.main import main

main()
