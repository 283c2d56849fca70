"""The network guard and guarded HTTP requests, shared by feed fetching and HTTP delivery."""
