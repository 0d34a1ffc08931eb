"""The fetcher service: feeds and pages in, a stream of clean articles out."""
