"""The pacing rule for a client whose block fetcher stalls when a server outruns its importer."""

from __future__ import annotations

from ethp2p.serve.pacing import ImportPacer, paced_client


def test_only_the_named_client_is_paced() -> None:
    assert paced_client("EthereumJS/0.10.5/linux/node20.19.5")
    assert not paced_client("Geth/v1.16.0-stable/linux-amd64/go1.24.4")
    assert not paced_client("ethp2p/v0.1.0/python")
    assert not paced_client("")


def test_an_answer_waits_until_the_client_holds_the_block_below_it() -> None:
    pacer = ImportPacer()
    assert pacer.required_height(1, 100) is None  # nothing below block 1 to wait for
    assert pacer.required_height(101, 100) == 100
    pacer.holds(100)
    assert pacer.required_height(101, 100) is None
    assert pacer.required_height(201, 100) == 200
    # Re-requests below what the client holds (its reorg step-back) are answered at once.
    assert pacer.required_height(51, 100) is None


def test_what_the_client_holds_never_goes_back() -> None:
    pacer = ImportPacer()
    pacer.holds(500)
    pacer.holds(300)
    assert pacer.known_height == 500
    assert pacer.required_height(501, 100) is None


def test_a_lead_lets_the_client_be_requests_behind() -> None:
    pacer = ImportPacer(lead_requests=2)
    assert pacer.required_height(501, 100) == 300
    assert pacer.required_height(201, 100) is None
