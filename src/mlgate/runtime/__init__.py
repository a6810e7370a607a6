"""A loaded model: read and checked (sha256, trusted types), then scored, with the compiled
paths that reproduce the library where they can (each checked where it switches in), and the
alias watcher that loads a new target before switching to it. Below serving, training,
monitoring, rollouts and exports, which all score through it."""
