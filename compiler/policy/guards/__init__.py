"""Guards: rules in Python over one cluster's merged config (see `base`); `registry`
lists them."""
