"""golem_actors: a Golem Network requestor runtime built on actors.

The public API grows here as the runtime lands; today it is the typed yagna client
(``golem_actors.yagna``) and the local network (``golem_actors.localnet``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
