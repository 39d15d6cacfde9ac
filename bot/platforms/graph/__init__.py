"""What the three Graph API adapters (Facebook Pages, Instagram, Threads) share: the pinned API version and its
end-of-life warning (``version``), a small typed HTTP client over requests (``client``: token in the
Authorization header, never in a URL we build; usage headers read on every answer), the error mapping by what the
caller does next (``errors``), and the container flow of Instagram and Threads (``containers``: create, poll on an
injected sleep, publish, reconcile from the container id kept in the publication's notes; ``ContainerPlatform``, the
base of the two adapters, makes their containers from the product's parameters).
"""
