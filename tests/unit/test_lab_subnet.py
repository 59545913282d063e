from __future__ import annotations

import socket

from procaudit.lab.runtime import address_for, claim_subnet, free_subnet


def test_a_claimed_block_is_not_claimed_again_until_released() -> None:
    first = free_subnet(5986)
    assert claim_subnet(first.subnet, 5986) is None
    first.release()
    again = claim_subnet(first.subnet, 5986)
    assert again is not None
    again.release()


def test_a_block_whose_address_is_taken_is_not_claimed() -> None:
    claim = free_subnet(5986)
    claim.release()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind((address_for(claim.subnet, 0), 5986))
    squatter.listen(1)
    try:
        assert claim_subnet(claim.subnet, 5986) is None
    finally:
        squatter.close()
