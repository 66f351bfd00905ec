"""DNS: the provider interface, the built-in providers and the propagation check."""
