"""The alternatives storywire is measured against: the original system's ways (a loop, a thread pool of 3,
a gather with Semaphore(5)) and the best a short script can do (``oracle``: told the backend's capacity;
``unbounded``: everything at once). Each does storywire's work inside its timed region, with storywire's
own functions (:mod:`bench.peers.common`): it clusters the articles with the default clustering, sends
the byte-identical request for each cluster and checks and regenerates its answers as storywire does;
only how the requests are scheduled differs. Every peer honours Retry-After on a 429."""
