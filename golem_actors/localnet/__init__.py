"""localnet: a local Golem network — a real yagna plus provider nodes written in Python."""
