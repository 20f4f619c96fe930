"""Identity, VPN (net v2), GSB-API binding and error mapping, against the real yagna."""

from __future__ import annotations

import pytest

from golem_actors.localnet.node import free_port
from golem_actors.yagna import (
    ApiConfig,
    YagnaBadRequestError,
    YagnaClient,
    YagnaConnectionError,
    YagnaNotFoundError,
    YagnaUnauthorizedError,
)
from tests.conftest import RealYagna

pytestmark = pytest.mark.yagna


def test_me_and_version(requestor: YagnaClient, provider: YagnaClient, real_yagna: RealYagna):
    assert requestor.identity.me().identity == real_yagna.requestor_id.node_id
    assert provider.identity.me().identity == real_yagna.provider_id.node_id
    assert provider.identity.me().name == "provider"
    assert requestor.identity.version().version == "0.17.6"


def test_bad_app_key_is_unauthorized_and_never_echoed(real_yagna: RealYagna):
    secret = "not-a-real-key-0123456789"
    bad = YagnaClient(ApiConfig(app_key=secret, api_url=real_yagna.node.api_url))
    with bad, pytest.raises(YagnaUnauthorizedError) as err:
        bad.identity.me()
    assert err.value.status == 401
    assert secret not in str(err.value)
    assert secret not in repr(err.value)
    assert secret not in repr(bad)


def test_malformed_id_is_bad_request(requestor: YagnaClient):
    with pytest.raises(YagnaBadRequestError) as err:
        requestor.market.get_agreement("deadbeef")
    assert err.value.status == 400
    assert "invalid length" in err.value.message


def test_unknown_demand_is_not_found(requestor: YagnaClient):
    with pytest.raises(YagnaNotFoundError):
        requestor.market.unsubscribe_demand("6d56857d57984310965bcf1fd26c32a5-" + "0" * 64)


def test_nothing_listening_is_a_connection_error():
    config = ApiConfig(app_key="k", api_url=f"http://127.0.0.1:{free_port()}")
    client = YagnaClient(config, sleep=lambda _s: None)
    with client, pytest.raises(YagnaConnectionError) as err:
        client.identity.me()
    assert err.value.method == "GET"
    assert err.value.path == "/me"


def test_vpn_network_nodes_addresses(requestor: YagnaClient, real_yagna: RealYagna):
    network = requestor.net.create_network("192.168.8.0", "255.255.255.0", "192.168.8.1")
    assert network.ip.startswith("192.168.8.0")
    assert network.id in {n.id for n in requestor.net.networks()}
    assert requestor.net.get_network(network.id).id == network.id
    assert [a.ip for a in requestor.net.addresses(network.id)] == ["192.168.8.1/24"]
    node_id = real_yagna.provider_id.node_id
    requestor.net.add_node(network.id, node_id, "192.168.8.7")
    assert [(n.id, n.ip) for n in requestor.net.nodes(network.id)] == [(node_id, "192.168.8.7")]
    requestor.net.remove_node(network.id, node_id)
    assert requestor.net.nodes(network.id) == []
    requestor.net.remove_network(network.id)
    assert network.id not in {n.id for n in requestor.net.networks()}


def test_gsb_service_bind_and_unbind(provider: YagnaClient):
    address = "/public/exeunit/test-binding"
    binding = provider.gsb.bind(address, ["Exec", "GetExecBatchResults"])
    assert binding.services_id
    assert binding.listen is not None
    assert binding.listen["on"] == address
    assert provider.gsb.websocket_url(binding.services_id).startswith("ws://127.0.0.1:")
    provider.gsb.unbind(binding.services_id)
    with pytest.raises(YagnaNotFoundError):
        provider.gsb.unbind(binding.services_id)
