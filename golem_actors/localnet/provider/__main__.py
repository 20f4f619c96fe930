"""``python -m golem_actors.localnet.provider CONFIG``: how ``LocalNet`` starts a provider."""

from golem_actors.localnet.provider.agent import main

if __name__ == "__main__":
    raise SystemExit(main())
