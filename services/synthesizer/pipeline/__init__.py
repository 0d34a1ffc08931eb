"""Job orchestration: claims queued jobs from the store and drives fetcher -> synthesis -> store for each.

It runs in the synthesizer process, but it is not synthesis: it only wires the services together."""
