"""A thin typed client of yagna's REST APIs, for requestors and providers alike.

from golem_actors.yagna import YagnaClient
with YagnaClient() as yagna:          # YAGNA_API_URL, YAGNA_APPKEY from the environment
    print(yagna.identity.me().identity)
"""

from golem_actors.yagna.client import YagnaClient
from golem_actors.yagna.config import DEFAULT_API_URL, ApiConfig, ConfigError
from golem_actors.yagna.errors import (
    YagnaBadRequestError,
    YagnaConflictError,
    YagnaConnectionError,
    YagnaError,
    YagnaGoneError,
    YagnaNotFoundError,
    YagnaResponseError,
    YagnaServerError,
    YagnaTimeoutError,
    YagnaUnauthorizedError,
)
from golem_actors.yagna.retry import RetryPolicy
from golem_actors.yagna.transport import CallRecord

__all__ = [
    "DEFAULT_API_URL",
    "ApiConfig",
    "CallRecord",
    "ConfigError",
    "RetryPolicy",
    "YagnaBadRequestError",
    "YagnaClient",
    "YagnaConflictError",
    "YagnaConnectionError",
    "YagnaError",
    "YagnaGoneError",
    "YagnaNotFoundError",
    "YagnaResponseError",
    "YagnaServerError",
    "YagnaTimeoutError",
    "YagnaUnauthorizedError",
]
