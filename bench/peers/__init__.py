"""The alternatives storywire is measured against: the original system's ways (a loop, a thread pool of 3,
a gather with Semaphore(5)) and the best a short script can do (``oracle``: told the backend's capacity;
``unbounded``: everything at once). One chat completion per cluster with the same prompt, against the
same simulator; every peer honours Retry-After on a 429, so none fails on a rate-limited backend."""
