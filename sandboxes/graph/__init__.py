"""One Graph API sandbox for Facebook Pages, Instagram and Threads: ``sandbox`` (the Sandbox classes), ``server``
(HTTP: routing, the error envelope, usage headers, faults), ``state`` (accounts, containers, posts, quotas)."""
