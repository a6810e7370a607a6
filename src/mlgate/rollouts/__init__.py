"""Safe rollouts: shadow and canary traffic, and a sequential test that decides."""
