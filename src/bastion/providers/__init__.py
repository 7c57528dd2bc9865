"""Model providers: the protocol, the built-in ones and the registry that maps models to them."""
