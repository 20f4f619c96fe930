"""``YagnaClient``: one transport, one attribute per API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import requests

from golem_actors.yagna.activity import ActivityApi
from golem_actors.yagna.config import ApiConfig
from golem_actors.yagna.gsb import GsbApi
from golem_actors.yagna.identity import IdentityApi
from golem_actors.yagna.market import MarketApi
from golem_actors.yagna.net import NetApi
from golem_actors.yagna.payment import PaymentApi
from golem_actors.yagna.retry import RetryPolicy
from golem_actors.yagna.transport import Transport

__all__ = ["YagnaClient"]


class YagnaClient:
    """A thin typed client of one yagna daemon, as one app key (requestor or provider).

    Calls from several threads may share one client: the session pools its connections (see
    ``Transport``). Long-polls hold a pooled connection each for their whole wait.
    """

    def __init__(
        self,
        config: ApiConfig | None = None,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        pool_maxsize: int = 64,
    ) -> None:
        self.config = config or ApiConfig.from_env()
        kwargs = {} if sleep is None else {"sleep": sleep}
        self.transport = Transport(
            self.config,
            session=session,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
            pool_maxsize=pool_maxsize,
            **kwargs,
        )
        self.identity = IdentityApi(self.transport)
        self.market = MarketApi(self.transport)
        self.activity = ActivityApi(self.transport)
        self.payment = PaymentApi(self.transport)
        self.net = NetApi(self.transport)
        self.gsb = GsbApi(self.transport)

    def __repr__(self) -> str:
        return f"YagnaClient(api_url={self.config.api_url!r})"

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
