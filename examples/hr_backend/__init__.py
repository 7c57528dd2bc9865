"""An HR performance-review service that trusts only the caller Bastion's token names."""
