"""The simple alternatives storywire is measured against, written the way the original system did it:
one chat completion per cluster with the same prompt, against the same simulator."""
